// Polyload.cs: the polyload guest API for .NET bundles (C#, any Mono C# compiler).
//
// `[build] csc` compiles this file into every C# bundle. A bundle shipped as
// a prebuilt assembly that calls other definitions compiles it in too:
//     mcs -target:library -out:Mine.dll Mine.cs Polyload.cs
//
// The internal call behind `Polyload.Call` is registered by polyload's
// `dotnet` loader (crates/polyload-dotnet). Arguments convert by the callee's
// signature: long, int, short, sbyte, byte, ushort, uint, ulong, double,
// float and bool to numbers and `bool`; string to `str`, `cstr` and `json`
// (JSON text); byte[] to `bytes`; object[] to a JSON array; null to JSON
// null. Results come back as long (signed integers), ulong (unsigned ones
// above long's range), double, bool, string (`str`; `json` as JSON text),
// byte[] or null (`void`).
using System;
using System.Globalization;
using System.Runtime.CompilerServices;

/// <summary>Calls definitions of the polyload namespace, whatever language
/// wrote them.</summary>
public static class Polyload
{
    [MethodImpl(MethodImplOptions.InternalCall)]
    static extern object CallRaw(string name, object[] args, out string error);

    /// <summary>Calls <paramref name="name"/> (`bundle.function`) with
    /// <paramref name="args"/>.</summary>
    /// <exception cref="PolyloadException">The definition is missing, an
    /// argument does not convert, or the callee reported an error.</exception>
    public static object Call(string name, params object[] args)
    {
        string error;
        object result = CallRaw(name, args ?? new object[0], out error);
        if (error != null)
            throw new PolyloadException(name, error);
        return result;
    }

    /// <summary>As <see cref="Call(string, object[])"/>, with the result
    /// converted to <typeparamref name="T"/>.</summary>
    public static T Call<T>(string name, params object[] args)
    {
        object result = Call(name, args);
        if (result == null)
            return default(T);
        if (result is T)
            return (T)result;
        return (T)Convert.ChangeType(result, typeof(T), CultureInfo.InvariantCulture);
    }
}

/// <summary>A failed <see cref="Polyload.Call(string, object[])"/>.</summary>
public class PolyloadException : Exception
{
    /// <summary>The definition that was called.</summary>
    public string Definition { get; private set; }

    /// <summary>An error from calling <paramref name="definition"/>.</summary>
    public PolyloadException(string definition, string message)
        : base(definition + ": " + message)
    {
        Definition = definition;
    }
}
