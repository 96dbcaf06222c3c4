@dod
Feature: 10 Definition of done
  After a push the agent has no duplicates, its unmanaged entries are exactly as they were,
  and its RAG search returns the current text of every updated document.

  Background:
    Given an agent whose knowledge base is:
      | entry          | kind      |
      | Company FAQ    | unmanaged |
      | 2025-Q1.md     | synced    |
      | Returns policy | unmanaged |
      | 2025-Q2.md     | synced    |

  Scenario: 10 Definition of done: no duplicates, unmanaged entries untouched, RAG returns the current text
    Given "2025-Q2.md" is edited locally
    And "2025-Q3.md" is added locally
    When I run "kb-sync push"
    Then the exit code is 0
    And the agent's knowledge base has no duplicate entries
    And the unmanaged entries are untouched byte for byte
    When I run "kb-sync verify --json"
    Then the exit code is 0
    And verify passes every check
    And verify's RAG probe returns the current text of "2025-Q2.md", "2025-Q3.md"

  Scenario: 10 Definition of done: verify fails when the agent is out of line with the folder
    Given "2025-Q1.md" is edited in the ElevenLabs UI keeping its size
    When I run "kb-sync verify"
    Then the exit code is 6
    And verify reports "2025-Q1.md: content equals the folder" as failed
