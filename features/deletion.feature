@deletion
Feature: Deletion safety
  Superseded versions are deleted only after the agent points at the new ones; a lingering
  dependency is waited out, and a document another agent uses is never force-deleted.

  Background:
    Given an agent whose knowledge base is:
      | entry        | kind      |
      | Company FAQ  | unmanaged |
      | 2025-Q1.md   | synced    |
      | 2025-Q2.md   | synced    |

  @fault
  Scenario Outline: Deletion: a dependency lingering for <linger> attempts ends <outcome>
    Given "2025-Q2.md" is edited locally
    And a detached document keeps its dependency for <linger> delete attempts
    When I run "kb-sync push"
    Then the exit code is 0
    And the old version of "2025-Q2.md" was deleted after <attempts> attempts, <outcome>
    And the old versions of "2025-Q2.md" are deleted

    Examples:
      | linger | attempts | outcome         |
      | 2      | 3        | deleted         |
      | 9      | 5        | force-deleted   |

  @emulator_only
  Scenario: Deletion: a document another agent uses is never forced
    Given "2025-Q2.md" is edited locally
    And another agent also uses the current version of "2025-Q2.md"
    When I run "kb-sync push"
    Then the exit code is 3
    And "2025-Q2.md" on the agent is the new version
    And the old version of "2025-Q2.md" is kept and reported as used by the other agent
    And the other agent still has the old version of "2025-Q2.md"

  Scenario: Deletion: a quarter removed from the folder is detached and deleted
    Given the agent also holds the synced quarter "2025-Q3.md"
    And "2025-Q3.md" is removed locally
    When I run "kb-sync push"
    Then the exit code is 0
    And the plan reads "0 to add, 0 to change, 1 to destroy"
    And the old versions of "2025-Q3.md" are deleted
    And the agent's knowledge base holds the current version of each local file
    And the unmanaged entries are untouched
