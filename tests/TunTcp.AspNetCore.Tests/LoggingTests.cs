using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using TunTcp.AspNetCore.Http;
using TunTcp.AspNetCore.Tests.Support;

namespace TunTcp.AspNetCore.Tests;

/// <summary>The app logs through the caller's factory, with ASP.NET Core's categories at Warning unless asked.</summary>
public sealed class LoggingTests : IAsyncLifetime
{
    private StackPair _net = null!;

    public ValueTask InitializeAsync()
    {
        _net = StackPair.Start();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => _net.DisposeAsync();

    [Theory]
    [InlineData(LogLevel.Warning, false)]
    [InlineData(LogLevel.Debug, true)]
    public async Task AspNetCoreCategories_LogAtTheChosenLevel_ThroughTheCallersFactory(LogLevel level, bool expectKestrelDetail)
    {
        var capture = new CapturingProvider();
        using var factory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(capture));
        await using (var app = await TunTcpHttpApp.StartAsync(_net.Server, new TunTcpHttpAppOptions
        {
            HttpPort = 80,
            LoggerFactory = factory,
            AspNetCoreLogLevel = level,
        }).Within())
        {
            using var client = _net.CreateHttpClient();
            Assert.Equal("ok\n", await client.GetStringAsync("http://10.0.0.1/healthz").Within());
        }
        bool detail = capture.Entries.Any(e => e.Category.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal) && e.Level < LogLevel.Warning);
        Assert.Equal(expectKestrelDetail, detail);
    }

    private sealed class CapturingProvider : ILoggerProvider
    {
        public ConcurrentQueue<(string Category, LogLevel Level)> Entries { get; } = new();
        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);
        public void Dispose() { }

        private sealed class Logger(CapturingProvider owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => true;
            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner.Entries.Enqueue((category, logLevel));
        }
    }
}
