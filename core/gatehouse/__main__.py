from gatehouse.cli import main
raise SystemExit(main())
