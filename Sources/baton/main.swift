import BatonCLI

await BatonMain.run()
