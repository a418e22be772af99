from tmatch.cli.main import main

main()
