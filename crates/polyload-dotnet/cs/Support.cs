// PolyloadSupport.dll: what the `dotnet` loader loads into every bundle's
// application domain before the bundle's own assembly. Compiled by mcs on
// first use into the runtime's cache (see src/vm.rs).
//
// Errors.Report describes an exception an export threw: the loader calls
// each export through its method's unmanaged thunk with the bundle's
// domain current, so the exception lands in the thunk's exception slot;
// the loader then calls Report on it (in the same domain), which hands its
// type, message and stack trace to the host through an internal call.
using System;
using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;

namespace PolyloadSupport
{
    public static class Errors
    {
        [MethodImpl(MethodImplOptions.InternalCall)]
        static extern void Fail(string type, string message, string stackTrace);

        public static void Report(Exception e)
        {
            Fail(e.GetType().FullName, e.Message, Trace(e));
        }

        /// The stack trace, formatted here (one line per frame, with file and
        /// line where the assembly has debug symbols) the same way on every
        /// Mono version.
        static string Trace(Exception e)
        {
            StringBuilder sb = new StringBuilder();
            for (Exception x = e; x != null; x = x.InnerException)
            {
                if (x != e)
                    sb.Append("--- inner: ").Append(x.GetType().FullName).Append(": ").Append(x.Message).Append('\n');
                StackFrame[] frames = new StackTrace(x, true).GetFrames() ?? new StackFrame[0];
                foreach (StackFrame f in frames)
                {
                    MethodBase m = f.GetMethod();
                    if (m == null || m.DeclaringType == null)
                        continue;
                    sb.Append("  at ").Append(m.DeclaringType.FullName).Append('.').Append(m.Name).Append(" (");
                    ParameterInfo[] ps = m.GetParameters();
                    for (int i = 0; i < ps.Length; i++)
                        sb.Append(i == 0 ? "" : ", ").Append(ps[i].ParameterType.Name);
                    sb.Append(')');
                    string file = f.GetFileName();
                    if (file != null)
                        sb.Append(" in ").Append(file).Append(':').Append(f.GetFileLineNumber());
                    sb.Append('\n');
                }
            }
            return sb.ToString();
        }
    }
}
