from astrojepa_cli.launcher import main

main()
