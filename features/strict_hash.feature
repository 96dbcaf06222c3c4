@strict_hash
Feature: 5.3 Strict hash and zero churn
  Any content change is caught, same-size edits included, and right after a successful run
  there is nothing to do.

  Background:
    Given an agent whose knowledge base is:
      | entry        | kind      |
      | Company FAQ  | unmanaged |
      | 2025-Q1.md   | synced    |
      | 2025-Q2.md   | synced    |

  Scenario Outline: 5.3 Strict hash: a same-size local edit is caught by "<command>"
    Given "2025-Q1.md" is edited locally keeping its size
    When I run "kb-sync <command>"
    Then the exit code is 0
    And the plan reads "0 to add, 1 to change, 0 to destroy"
    And the agent's knowledge base holds the current version of each local file

    Examples:
      | command            |
      | push               |
      | push --strict-hash |

  Scenario: 5.3 Strict hash: a same-size edit made in the ElevenLabs UI is missed by a plain push and caught by --strict-hash
    Given "2025-Q1.md" is edited in the ElevenLabs UI keeping its size
    When I run "kb-sync push"
    Then the exit code is 0
    And the plan reads "0 to add, 0 to change, 0 to destroy"
    When I run "kb-sync push --strict-hash"
    Then the exit code is 0
    And the plan reads "0 to add, 1 to change, 0 to destroy"
    And the agent's knowledge base holds the current version of each local file

  Scenario Outline: 5.3 No churn after a successful run: "<command>" finds nothing to do
    Given "2025-Q2.md" is edited locally
    And "kb-sync push" has been applied
    When I run "kb-sync <command>"
    Then the exit code is 0
    And the plan reads "0 to add, 0 to change, 0 to destroy"
    And no write request was sent

    Examples:
      | command            |
      | push               |
      | push --strict-hash |

  @emulator_only
  Scenario: 5.3 No churn when the server returns legacy HTML content
    Given the agent also holds the synced quarter "2025-Q4.md" stored as legacy HTML
    When I run "kb-sync push --strict-hash"
    Then the exit code is 0
    And the plan reads "0 to add, 0 to change, 0 to destroy"
    And no write request was sent
