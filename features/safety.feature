@safety
Feature: Safety: guards and bad input
  The suite only ever touches a staging agent; a push never deletes most of the managed
  documents by accident; bad input stops the run with one clear line and changes nothing.

  Scenario Outline: Safety: the staging-only guard <result> agent "<agent>"
    Given the staging settings ELEVENLABS_AGENT_ID="<agent>", KB_SYNC_STAGING_CONFIRM="<confirm>", KB_SYNC_PRODUCTION_AGENT_IDS="<production>"
    When the harness checks the staging guard
    Then the guard <result> with a message naming "<names>"

    Examples:
      | agent         | confirm       | production                | result  | names                        |
      | agent_stage01 | agent_stage01 | agent_prod01              | accepts | agent_stage01                |
      | agent_prod01  | agent_prod01  | agent_other,agent_prod01  | refuses | KB_SYNC_PRODUCTION_AGENT_IDS |
      | agent_stage01 |               | agent_prod01              | refuses | KB_SYNC_STAGING_CONFIRM      |
      | agent_stage01 | agent_stage02 |                           | refuses | does not match               |

  Scenario Outline: Safety: the mass-delete guard <verdict> deleting 3 of 4 quarters
    Given an agent whose knowledge base is:
      | entry        | kind      |
      | Company FAQ  | unmanaged |
      | 2025-Q1.md   | synced    |
      | 2025-Q2.md   | synced    |
      | 2025-Q3.md   | synced    |
      | 2025-Q4.md   | synced    |
    And "2025-Q2.md", "2025-Q3.md", "2025-Q4.md" are removed locally
    When I run "kb-sync push <options>"
    Then the exit code is <exit>
    And <effect>

    Examples:
      | verdict            | options             | exit | effect                                                               |
      | refuses            |                     | 4    | the error says "--allow-mass-delete" in one line and nothing changed |
      | with consent allows | --allow-mass-delete | 0    | the old versions of "2025-Q2.md", "2025-Q3.md", "2025-Q4.md" are deleted |

  Scenario Outline: Safety: bad input (<case>) exits <exit> with one clear line and changes nothing
    Given an agent whose knowledge base is:
      | entry        | kind      |
      | Company FAQ  | unmanaged |
      | 2025-Q1.md   | synced    |
    And "2025-Q1.md" is edited locally
    And the bad input "<case>"
    When I run "kb-sync push"
    Then the exit code is <exit>
    And the error says "<message>" in one line and nothing changed

    Examples:
      | case                       | exit | message                          |
      | a file that is not UTF-8   | 5    | is not valid UTF-8               |
      | ELEVENLABS_API_KEY missing | 5    | ELEVENLABS_API_KEY is not set    |
      | ELEVENLABS_AGENT_ID missing| 5    | ELEVENLABS_AGENT_ID is not set   |
      | a wrong API key            | 5    | 401                              |
      | an unknown agent           | 5    | no such agent                    |
