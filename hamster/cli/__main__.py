from hamster.cli import main

main()
