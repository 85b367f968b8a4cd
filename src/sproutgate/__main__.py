from sproutgate.cli import main

main()
