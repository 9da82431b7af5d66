from nerfhead.cli import main

main()
