from ai_sysadmin.cli import main

raise SystemExit(main())
