@smoke
Feature: 5.1 Smoke test
  Before anything is changed, a dry run proves the settings are read, the agent is
  reachable and shows what a push would do, without writing anything.

  Background:
    Given an agent whose knowledge base is:
      | entry        | kind      |
      | Company FAQ  | unmanaged |
      | 2025-Q1.md   | synced    |
      | 2025-Q2.md   | synced    |

  Scenario: 5.1 Smoke test: a dry run reads the settings, reaches the agent and lists the plan without writing
    Given "2025-Q2.md" is edited locally
    And "2025-Q3.md" is added locally
    When I run "kb-sync push --dry-run"
    Then the exit code is 0
    And the log shows the agent was read with 3 knowledge base entries
    And the plan lists "2025-Q3.md" to create and "2025-Q2.md" to update
    And the plan reads "1 to add, 1 to change, 0 to destroy"
    And no write request was sent
    And the agent's knowledge base is unchanged

  Scenario: 5.1 Smoke test: plan --detailed-exitcode says changes are pending
    Given "2025-Q2.md" is edited locally
    When I run "kb-sync plan --detailed-exitcode"
    Then the exit code is 2
    And the plan reads "0 to add, 1 to change, 0 to destroy"
    And no write request was sent
