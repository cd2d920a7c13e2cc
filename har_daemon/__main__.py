from har_daemon.cli import main

raise SystemExit(main())
