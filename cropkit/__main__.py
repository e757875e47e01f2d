from cropkit.cli import main

raise SystemExit(main())
