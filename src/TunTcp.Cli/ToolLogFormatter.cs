using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace TunTcp.Cli;

/// <summary>
/// Formats log entries as a command-line tool's messages on stderr: <c>tuntcp: Created TUN device ...</c>,
/// <c>tuntcp: warning: ...</c>; no category names, which mean nothing to a user.
/// </summary>
internal sealed class ToolLogFormatter() : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "tuntcp";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        string message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (string.IsNullOrEmpty(message) && logEntry.Exception is null) return;
        string level = logEntry.LogLevel switch
        {
            LogLevel.Warning => "warning: ",
            LogLevel.Error or LogLevel.Critical => "error: ",
            LogLevel.Debug or LogLevel.Trace => "debug: ",
            _ => "",
        };
        textWriter.Write("tuntcp: ");
        textWriter.Write(level);
        textWriter.WriteLine(message);
        if (logEntry.Exception is not null) textWriter.WriteLine(logEntry.Exception.ToString());
    }

    /// <summary>A logger factory writing everything to stderr in this format.</summary>
    public static ILoggerFactory CreateFactory(LogLevel minimum) => LoggerFactory.Create(builder => builder
        .SetMinimumLevel(minimum)
        .AddConsole(o =>
        {
            o.FormatterName = FormatterName;
            // stdout carries the command's output (packet lines, the ready line); logs go to stderr.
            o.LogToStandardErrorThreshold = LogLevel.Trace;
        })
        .AddConsoleFormatter<ToolLogFormatter, ConsoleFormatterOptions>());
}
