// Pipeline step 4: the document from Lua, stamped and canonical.
using System;
using System.Linq;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Pipe
{
    public static class Stamp
    {
        public static string Run(string json)
        {
            var doc = JObject.Parse(json);
            doc["generator"] = "polyload pipeline (python -> js -> lua -> c#)";
            doc["stamped_by"] = "Newtonsoft.Json " + typeof(JObject).Assembly.GetName().Version;
            var sorted = new JObject(doc.Properties().OrderBy(p => p.Name, StringComparer.Ordinal));
            return sorted.ToString(Formatting.None);
        }
    }
}
