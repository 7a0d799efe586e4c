import StockadeCtl

await Stockadectl.run(Array(CommandLine.arguments.dropFirst()))
