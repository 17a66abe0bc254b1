from detectctl.cli import main

main()
