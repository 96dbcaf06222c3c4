@questions
Feature: Questions the agent must answer
  After a push, the agent's retrieval (rag-query, with the agent's defaults) must bring back
  the facts of the current documents: `kb-sync verify --questions FILE` asks each question of
  a TOML file and checks that every expected string is in the retrieved chunks, from the
  current document of the question's file. The sample monitoring data is generated into the
  folder and pushed first.

  Background:
    Given the folder holds the sample monitoring data, generated
    And "kb-sync push" has been applied

  Scenario Outline: <ask> is answered with "<expect>" from <file> right after a push
    Given the question "<ask>" expecting "<expect>" from "<file>"
    When the questions are asked
    Then the exit code is 0
    And question 1 passes

    Examples:
      | ask               | expect                                            | file       |
      | 2025-Q1: status?  | стабильно                                         | 2025-Q1.md |
      | 2025-Q3: status?  | внимание                                          | 2025-Q3.md |
      | 2025-Q2: summary? | Рост нагрузки на 18 % после весенней кампании.    | 2025-Q2.md |
      | 2026-Q1: summary? | Миграция в новый дата-центр завершена по плану.   | 2026-Q1.md |

  Scenario: The sample's generated questions all pass after the push
    When the questions are asked
    Then the exit code is 0
    And every question passes

  Scenario: After a 1-document update the changed fact's new value passes and the old one fails
    Given "2025-Q2.md" now says "**status**: внимание" instead of "**status**: стабильно"
    And the questions:
      | ask              | expect    | file       |
      | 2025-Q2: status? | внимание  | 2025-Q2.md |
      | 2025-Q2: status? | стабильно | 2025-Q2.md |
    When I run "kb-sync push"
    Then the exit code is 0
    And the plan reads "0 to add, 1 to change, 0 to destroy"
    When the questions are asked
    Then the exit code is 6
    And question 1 passes
    And question 2 fails as "other_document"

  @emulator_only
  Scenario: A fact that lives in an unattached document fails
    Given an unattached document "Аренда офиса" says "Аренда офиса во втором квартале: 1 200 000 рублей."
    And the questions:
      | ask                               | expect    | file |
      | Аренда офиса во втором квартале?  | 1 200 000 |      |
    When the questions are asked
    Then the exit code is 6
    And question 1 fails as "not_retrieved"

  Scenario: A malformed questions file is one line and exit 5
    Given the questions file reads:
      """
      [[question]]
      ask = "2025-Q1: status?"
      expect = ["стабильно"]

      [[question]]
      ask = "2025-Q2: status?"
      expect = "стабильно"
      """
    When the questions are asked
    Then the exit code is 5
    And the error names the questions file and "question #2"

  @emulator_only
  Scenario: Agent tests are created on the first run, reused on the second
    Given the questions:
      | ask              | expect    | file       |
      | 2025-Q1: status? | стабильно | 2025-Q1.md |
      | 2025-Q3: status? | стабильно | 2025-Q3.md |
    When the questions are asked with agent tests
    Then the exit code is 6
    And 2 agent tests were created and 0 reused
    And agent test 1 is "passed"
    And agent test 2 is "failed"
    When the questions are asked with agent tests
    Then 0 agent tests were created and 2 reused
