from astrojepa_cli.app import main

main()
