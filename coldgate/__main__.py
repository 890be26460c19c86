from coldgate.cli import main

main()
