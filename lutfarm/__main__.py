from lutfarm.cli import main

main()
