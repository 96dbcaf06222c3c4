@observability
Feature: 8 Observability
  The log of a run proves each step: the count before and after, the updated documents by
  name, each index result, the PATCH, every delete attempt and the outcome.

  Background:
    Given an agent whose knowledge base is:
      | entry        | kind      |
      | Company FAQ  | unmanaged |
      | 2025-Q1.md   | synced    |
      | 2025-Q2.md   | synced    |

  Scenario Outline: 8 Observability: a <format> log shows every required line
    Given "2025-Q2.md" is edited locally
    When I run "kb-sync push --log-format <format>"
    Then the exit code is 0
    And the log has these lines:
      | event          | fields                                  |
      | kb.before      | count=3                                 |
      | plan           | summary                                 |
      | doc.uploaded   | file=2025-Q2.md, name                   |
      | index.result   | file=2025-Q2.md, status=succeeded       |
      | agent.patched  | count_before=3, count_after=3           |
      | delete.attempt | outcome=deleted                         |
      | run.done       | count_before=3, count_after=3, updated  |
    And run.done names "2025-Q2.md" as updated
    And the run record holds the knowledge base before and after

    Examples:
      | format |
      | human  |
      | json   |
