using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/TunTcp.Benchmarks -- --filter '*' [--job short]
BenchmarkSwitcher.FromAssembly(typeof(TunTcp.Benchmarks.CoreReceiveBenchmarks).Assembly).Run(args);
