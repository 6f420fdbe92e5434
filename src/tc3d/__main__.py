from tc3d.cli import main

raise SystemExit(main())
