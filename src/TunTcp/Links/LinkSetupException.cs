namespace TunTcp.Links;

/// <summary>
/// Setting up a link failed in a way the user can fix: missing privileges, no TUN driver, a
/// device name in use, a bad address, a namespace that cannot be created. <see cref="Exception.Message"/>
/// is written for the person running the tool: it says what failed and names the fix, so a
/// command-line front end prints it as is, without a stack trace.
/// </summary>
public sealed class LinkSetupException : Exception
{
    public LinkSetupException(string message, int errno = 0, Exception? inner = null)
        : base(message, inner)
    {
        Errno = errno;
    }

    /// <summary>The errno of the failing system call, or 0 when the failure was not a system call.</summary>
    public int Errno { get; }

    /// <summary>
    /// True when another device name is the fix (the name is taken): a front end can name its own
    /// option for it, since the library's messages speak of settings, not of command lines.
    /// </summary>
    public bool DeviceNameTaken { get; init; }
}
