@safety @fault
Feature: Safety: failures leave the agent working
  A run that fails part-way leaves every referenced document present and indexed, the next run
  converges without duplicates, and a person's edit made during a run is never overwritten.

  Background:
    Given an agent whose knowledge base is:
      | entry        | kind      |
      | Company FAQ  | unmanaged |
      | 2025-Q1.md   | synced    |
      | 2025-Q2.md   | synced    |

  Scenario: Safety: a run whose agent PATCH keeps failing changes nothing, and the next run converges
    Given "2025-Q2.md" is edited locally
    And the agent PATCH fails with HTTP 500 every time
    When I run "kb-sync push"
    Then the exit code is 1
    And the agent's knowledge base is unchanged
    And the agent's knowledge base has no entry that is not indexed
    When the API is healthy again
    And I run "kb-sync push"
    Then the exit code is 0
    And no document was uploaded again: the indexed orphan was reused
    And the agent's knowledge base holds the current version of each local file
    And no document of this run is left behind

  Scenario: Safety: a connection dropped after an upload was committed does not create a duplicate
    Given "2025-Q2.md" is edited locally
    And the connection drops right after the upload of a document is committed
    When I run "kb-sync push"
    Then the exit code is 0
    And exactly one document holds the new version of "2025-Q2.md"
    And the agent's knowledge base holds the current version of each local file

  Scenario: Safety: 429 answers without Retry-After are retried with back-off
    Given "2025-Q2.md" is edited locally
    And the API answers 429 without Retry-After to the next 2 uploads
    When I run "kb-sync push"
    Then the exit code is 0
    And the log shows 2 retries of HTTP 429
    And exactly one document holds the new version of "2025-Q2.md"

  Scenario Outline: Safety: a knowledge base edited during the run is not overwritten (someone <edit>)
    Given "2025-Q2.md" is edited locally
    And while the run uploads, someone <edit>
    When I run "kb-sync push"
    Then the exit code is <exit>
    And the person's edit is still on the agent

    Examples:
      | edit                                         | exit |
      | attaches the unmanaged document "Late FAQ"   | 0    |
      | detaches "2025-Q1.md" in the ElevenLabs UI   | 4    |
