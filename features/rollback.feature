@rollback
Feature: 9 Rollback
  The last applied push can be undone: the agent's previous knowledge base comes back, even
  when the superseded documents were already deleted.

  Background:
    Given an agent whose knowledge base is:
      | entry          | kind      |
      | Company FAQ    | unmanaged |
      | 2025-Q1.md     | synced    |
      | 2025-Q2.md     | synced    |
      | Returns policy | unmanaged |

  Scenario: 9 Rollback after deletion: the previous knowledge base comes back
    Given "2025-Q2.md" is edited locally
    And "kb-sync push" has been applied
    And the old versions of "2025-Q2.md" are deleted
    When I run "kb-sync rollback --dry-run"
    Then the exit code is 0
    And no write request was sent
    When I run "kb-sync rollback"
    Then the exit code is 0
    And the agent's knowledge base equals the one before the push, by names and content
    And every recreated document is indexed "succeeded"
    And the documents the push created are deleted
    And the unmanaged entries are untouched

  Scenario: 9 Rollback undoes the last push, not an earlier one
    Given "2025-Q2.md" is edited locally
    And "kb-sync push" has been applied
    And "2025-Q1.md" is edited locally
    And "kb-sync push" has been applied
    When I run "kb-sync rollback"
    Then the exit code is 0
    And the agent's knowledge base equals the one before the push, by names and content

  Scenario: 9 Rollback of a push that added one quarter and deleted another
    Given the agent also holds the synced quarter "2025-Q3.md"
    And "2025-Q3.md" is removed locally
    And "2025-Q4.md" is added locally
    And "kb-sync push" has been applied
    And the old versions of "2025-Q3.md" are deleted
    When I run "kb-sync rollback"
    Then the exit code is 0
    And the agent's knowledge base equals the one before the push, by names and content
    And every recreated document is indexed "succeeded"
    And the documents the push created are deleted
    And the unmanaged entries are untouched

  Scenario: 9 Rollback from any machine: the run history is kept in ElevenLabs
    Given machine "A" has the quarters with version "1" of "2025-Q2.md"
    And "kb-sync push" has been applied on machine "A"
    And machine "B" has the quarters with version "2" of "2025-Q2.md"
    And "kb-sync push" has been applied on machine "B"
    When I run "kb-sync rollback" on a fresh machine "C"
    Then the exit code is 0
    And the agent holds version "1" of "2025-Q2.md" and the others as given
    And the agent's knowledge base has no duplicate entries
    And the unmanaged entries are untouched
    And the workspace holds only our folder, its .kb-sync, one document per file and at most 10 stored runs
    When I run "kb-sync push" on machine "B"
    Then the exit code is 0
    And the agent holds version "2" of "2025-Q2.md" and the others as given
    And the workspace holds only our folder, its .kb-sync, one document per file and at most 10 stored runs
