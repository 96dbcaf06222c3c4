@rag_status
Feature: 6.1 Every RAG index status
  A new version is attached only once its RAG index has succeeded; anything else keeps the
  old version on the agent and says why.

  Background:
    Given an agent whose knowledge base is:
      | entry        | kind      |
      | Company FAQ  | unmanaged |
      | 2025-Q1.md   | synced    |
      | 2025-Q2.md   | synced    |

  Scenario: 6.1 RAG status succeeded: the new version is attached
    Given "2025-Q2.md" is edited locally
    When I run "kb-sync push"
    Then the exit code is 0
    And the index result of "2025-Q2.md" is logged as "succeeded"
    And "2025-Q2.md" on the agent is the new version

  @fault
  Scenario Outline: 6.1 RAG status <status>: exit <exit>, the agent keeps the <version> version
    Given "2025-Q2.md" is edited locally
    And the RAG index of "2025-Q2.md" <behaviour>
    When I run "kb-sync push --index-wait <wait>"
    Then the exit code is <exit>
    And the index result of "2025-Q2.md" is logged as "<final>"
    And "2025-Q2.md" on the agent is the <version> version
    And the agent's knowledge base has no entry that is not indexed
    And the unmanaged entries are untouched

    Examples:
      | status                 | behaviour         | wait | exit | final      | version |
      | pending until timeout  | stays processing  | 2    | 3    | processing | old     |
      | failed then retry      | fails once        | 30   | 0    | succeeded  | new     |
      | failed for good        | always fails      | 30   | 3    | failed     | old     |

  @fault
  Scenario Outline: 6.1 RAG status rag_limit_exceeded <when>: agent untouched, quota reported
    Given "2025-Q2.md" is edited locally
    And "2025-Q3.md" is added locally
    And the workspace RAG quota runs out <when>
    When I run "kb-sync push"
    Then the exit code is <exit>
    And the log reports the RAG quota with "<event>"
    And the agent's knowledge base is unchanged
    And no document of this run is left behind

    Examples:
      | when                  | exit | event            |
      | before the upload     | 4    | quota.preflight  |
      | during indexing       | 3    | quota.exceeded   |

  Scenario Outline: 6.1 RAG status document_too_small: a note under 500 bytes with --small-docs <policy>
    Given the small note "holiday-hours.md" is added locally
    When I run "kb-sync push --small-docs <policy>"
    Then the exit code is <exit>
    And the log warns that "holiday-hours.md" is under 500 bytes
    And "holiday-hours.md" is <outcome>

    Examples:
      | policy | exit | outcome                               |
      | prompt | 0    | attached with usage_mode prompt       |
      | skip   | 0    | not attached                          |
      | fail   | 5    | refused before any write              |
