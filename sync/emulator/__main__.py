from sync.emulator.cli import main

raise SystemExit(main())
