using System.Buffers;
using System.Collections;
using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using TunTcp.Sockets;

namespace TunTcp.AspNetCore;

/// <summary>
/// The connection is its own feature collection, as Kestrel's transports are: the transport's
/// features are answered by a type test with no dictionary, and only features that others add
/// (Kestrel's TLS middleware adds several) go into a dictionary made on first use.
/// </summary>
internal sealed partial class TunTcpTransportConnection : IFeatureCollection,
    IConnectionIdFeature, IConnectionTransportFeature, IConnectionItemsFeature, IConnectionLifetimeFeature,
    IConnectionEndPointFeature, IMemoryPoolFeature, ITunTcpConnectionFeature
{
    private static readonly Type[] OwnFeatures =
    [
        typeof(IConnectionIdFeature), typeof(IConnectionTransportFeature), typeof(IConnectionItemsFeature),
        typeof(IConnectionLifetimeFeature), typeof(IConnectionEndPointFeature), typeof(IMemoryPoolFeature),
        typeof(ITunTcpConnectionFeature),
    ];

    // Features set by others, and own features replaced or removed (a null value hides one).
    private Dictionary<Type, object?>? _setFeatures;
    private int _revision;

    public override IFeatureCollection Features => this;

    bool IFeatureCollection.IsReadOnly => false;

    int IFeatureCollection.Revision => _revision;

    object? IFeatureCollection.this[Type key]
    {
        get
        {
            if (_setFeatures is not null && _setFeatures.TryGetValue(key, out var set)) return set;
            return Array.IndexOf(OwnFeatures, key) >= 0 ? this : null;
        }
        set
        {
            (_setFeatures ??= new Dictionary<Type, object?>())[key] = value;
            _revision++;
        }
    }

    TFeature? IFeatureCollection.Get<TFeature>() where TFeature : default
    {
        // The common case, an own feature nobody replaced, costs a type test.
        if (_setFeatures is null && this is TFeature own && Array.IndexOf(OwnFeatures, typeof(TFeature)) >= 0) return own;
        return (TFeature?)((IFeatureCollection)this)[typeof(TFeature)];
    }

    void IFeatureCollection.Set<TFeature>(TFeature? instance) where TFeature : default =>
        ((IFeatureCollection)this)[typeof(TFeature)] = instance;

    IEnumerator<KeyValuePair<Type, object>> IEnumerable<KeyValuePair<Type, object>>.GetEnumerator()
    {
        foreach (var type in OwnFeatures)
            if (_setFeatures is null || !_setFeatures.ContainsKey(type))
                yield return new KeyValuePair<Type, object>(type, this);
        if (_setFeatures is null) yield break;
        foreach (var (type, value) in _setFeatures)
            if (value is not null)
                yield return new KeyValuePair<Type, object>(type, value);
    }

    IEnumerator IEnumerable.GetEnumerator() => ((IEnumerable<KeyValuePair<Type, object>>)this).GetEnumerator();

    // ---- the transport's own features ----

    string IConnectionIdFeature.ConnectionId
    {
        get => ConnectionId;
        set => ConnectionId = value;
    }

    IDuplexPipe IConnectionTransportFeature.Transport
    {
        get => Transport;
        set => Transport = value;
    }

    IDictionary<object, object?> IConnectionItemsFeature.Items
    {
        get => Items;
        set => Items = value;
    }

    CancellationToken IConnectionLifetimeFeature.ConnectionClosed
    {
        get => ConnectionClosed;
        set => ConnectionClosed = value;
    }

    void IConnectionLifetimeFeature.Abort() => Abort();

    EndPoint? IConnectionEndPointFeature.LocalEndPoint
    {
        get => LocalEndPoint;
        set => LocalEndPoint = value;
    }

    EndPoint? IConnectionEndPointFeature.RemoteEndPoint
    {
        get => RemoteEndPoint;
        set => RemoteEndPoint = value;
    }

    MemoryPool<byte> IMemoryPoolFeature.MemoryPool => MemoryPool;

    TunTcpConnection ITunTcpConnectionFeature.Connection => _connection;
}
