from pifleet.cli import main

main()
