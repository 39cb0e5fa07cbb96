// PolyloadSupport.dll: what the `dotnet` loader loads into every bundle's
// application domain before the bundle's own assembly. Compiled by mcs on
// first use into the runtime's cache (see src/vm.rs).
//
// Wrappers.Wrap makes, for one public static method, a static method of the
// same signature whose body is
//     try { return Target(args...); } catch (Exception e) { Report(e); return default; }
// so that no exception ever leaves managed code: Mono treats an exception
// that reaches an unmanaged thunk called from another application domain as
// unhandled and aborts the process. The loader calls the wrapper through
// its unmanaged thunk; Report hands the exception's type, message and stack
// trace to the host through an internal call.
using System;
using System.Diagnostics;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using System.Text;

namespace PolyloadSupport
{
    public static class Wrappers
    {
        static ModuleBuilder module;
        static int count;

        [MethodImpl(MethodImplOptions.InternalCall)]
        static extern void Fail(string type, string message, string stackTrace);

        public static void Report(Exception e)
        {
            Fail(e.GetType().FullName, e.Message, Trace(e));
        }

        /// The stack trace without the wrappers' frames, formatted here:
        /// Exception.StackTrace names each frame's module by its version id,
        /// which a Reflection.Emit module does not have (Mono asserts).
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
                    if (m == null || m.DeclaringType == null || m.DeclaringType.Assembly is AssemblyBuilder)
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

        /// Returns the wrapper's RuntimeMethodHandle value (Mono's MonoMethod *).
        public static long Wrap(MethodInfo target)
        {
            if (module == null)
            {
                AssemblyBuilder ab = AppDomain.CurrentDomain.DefineDynamicAssembly(
                    new AssemblyName("PolyloadWrappers"), AssemblyBuilderAccess.Run);
                module = ab.DefineDynamicModule("PolyloadWrappers");
            }
            ParameterInfo[] ps = target.GetParameters();
            Type[] types = new Type[ps.Length];
            for (int i = 0; i < ps.Length; i++)
                types[i] = ps[i].ParameterType;
            Type ret = target.ReturnType;
            TypeBuilder tb = module.DefineType("W" + (count++) + "_" + target.Name,
                TypeAttributes.Public | TypeAttributes.Abstract | TypeAttributes.Sealed);
            MethodBuilder mb = tb.DefineMethod("Call",
                MethodAttributes.Public | MethodAttributes.Static, ret, types);
            ILGenerator il = mb.GetILGenerator();
            LocalBuilder result = ret == typeof(void) ? null : il.DeclareLocal(ret);
            il.BeginExceptionBlock();
            for (int i = 0; i < types.Length; i++)
                il.Emit(OpCodes.Ldarg, (short)i);
            il.Emit(OpCodes.Call, target);
            if (result != null)
                il.Emit(OpCodes.Stloc, result);
            il.BeginCatchBlock(typeof(Exception));
            il.Emit(OpCodes.Call, typeof(Wrappers).GetMethod("Report"));
            il.EndExceptionBlock();
            if (result != null)
                il.Emit(OpCodes.Ldloc, result);
            il.Emit(OpCodes.Ret);
            Type t = tb.CreateType();
            return t.GetMethod("Call").MethodHandle.Value.ToInt64();
        }
    }
}
