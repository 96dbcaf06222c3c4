@update
Feature: 5.2 Update one or two documents
  Changed quarters are uploaded as new documents, indexed, attached with one PATCH of the
  agent's knowledge base, and only then are the old versions deleted.

  Background:
    Given an agent whose knowledge base is:
      | entry          | kind      |
      | Company FAQ    | unmanaged |
      | 2025-Q1.md     | synced    |
      | 2025-Q2.md     | synced    |
      | Returns policy | unmanaged |

  Scenario Outline: 5.2 Update <count> document(s): created, indexed, attached in one PATCH, old versions deleted
    Given <files> are edited locally
    When I run "kb-sync push"
    Then the exit code is 0
    And the plan reads "0 to add, <count> to change, 0 to destroy"
    And a new document was created for each of <files>
    And the new version of each of <files> is indexed "succeeded"
    And the agent was PATCHed once through conversation_config.agent.prompt.knowledge_base with the new versions in place of the old
    And the old versions of <files> are deleted
    And the agent's knowledge base holds the current version of each local file
    And the unmanaged entries are untouched

    Examples:
      | count | files                        |
      | 1     | "2025-Q2.md"                 |
      | 2     | "2025-Q1.md", "2025-Q2.md"   |

  Scenario: 5.2 A new quarter is added at the end, nothing else moves
    Given "2025-Q3.md" is added locally
    When I run "kb-sync push"
    Then the exit code is 0
    And the plan reads "1 to add, 0 to change, 0 to destroy"
    And the new version of each of "2025-Q3.md" is indexed "succeeded"
    And the agent's knowledge base holds the current version of each local file
    And the unmanaged entries are untouched
