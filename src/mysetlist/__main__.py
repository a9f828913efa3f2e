from mysetlist.cli import main

main()
