from emgen.cli import main

main()
