using Microsoft.Extensions.Logging;

namespace TunTcp.Cli;

/// <summary>
/// Logs as a command-line tool talks: one line per entry on stderr, <c>tuntcp: Created TUN device ...</c>,
/// <c>tuntcp: warning: ...</c>, no category names (they mean nothing to a user).
/// </summary>
/// <remarks>
/// Synchronous on purpose, unlike the console logger's background queue: the tool's own status
/// lines ("ready", errors) are written directly, and a log line written before them must appear
/// before them, or a user (or a test) reads "ready" before "Created TUN device". Entries are rare
/// (set-up, warnings, shutdown), so the write cost on the calling thread does not matter.
/// </remarks>
internal sealed class ToolLoggerProvider(TextWriter writer, LogLevel minimum) : ILoggerProvider
{
    private readonly Lock _lock = new();
    private readonly LogLevel _minimum = minimum;

    public ILogger CreateLogger(string categoryName) => new ToolLogger(this);

    public void Dispose() { }

    /// <summary>A logger factory writing every entry at <paramref name="minimum"/> or above to <paramref name="writer"/>.</summary>
    public static ILoggerFactory CreateFactory(TextWriter writer, LogLevel minimum) =>
        LoggerFactory.Create(builder => builder.SetMinimumLevel(minimum).AddProvider(new ToolLoggerProvider(writer, minimum)));

    private void Write(LogLevel level, string message, Exception? exception)
    {
        string prefix = level switch
        {
            LogLevel.Warning => "tuntcp: warning: ",
            LogLevel.Error or LogLevel.Critical => "tuntcp: error: ",
            LogLevel.Debug or LogLevel.Trace => "tuntcp: debug: ",
            _ => "tuntcp: ",
        };
        lock (_lock)
        {
            writer.WriteLine(prefix + message);
            if (exception is not null) writer.WriteLine(exception.ToString());
        }
    }

    private sealed class ToolLogger(ToolLoggerProvider provider) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= provider._minimum && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            provider.Write(logLevel, formatter(state, exception), exception);
        }
    }
}
