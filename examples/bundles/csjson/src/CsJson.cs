// JSON helpers on Newtonsoft.Json (Json.NET): pretty printing, JSONPath
// queries and a canonical form. JSON crosses as text (polyload's `json`).
using System;
using System.IO;
using System.Linq;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace CsJson
{
    public static class Api
    {
        static JToken Parse(string json)
        {
            using (var reader = new JsonTextReader(new StringReader(json)))
            {
                reader.DateParseHandling = DateParseHandling.None;
                reader.FloatParseHandling = FloatParseHandling.Double;
                return JToken.ReadFrom(reader);
            }
        }

        public static string Pretty(string json)
        {
            var sw = new StringWriter();
            using (var w = new JsonTextWriter(sw))
            {
                w.Formatting = Formatting.Indented;
                w.Indentation = 2;
                Parse(json).WriteTo(w);
            }
            return sw.ToString();
        }

        public static string Select(string json, string path)
        {
            var found = new JArray(Parse(json).SelectTokens(path, true));
            return found.ToString(Formatting.None);
        }

        static JToken Sorted(JToken t)
        {
            var o = t as JObject;
            if (o != null)
                return new JObject(o.Properties()
                    .OrderBy(p => p.Name, StringComparer.Ordinal)
                    .Select(p => new JProperty(p.Name, Sorted(p.Value))));
            var a = t as JArray;
            if (a != null)
                return new JArray(a.Select(Sorted));
            return t;
        }

        public static string Canonical(string json)
        {
            return Sorted(Parse(json)).ToString(Formatting.None);
        }

        public static string Version()
        {
            return typeof(JToken).Assembly.GetName().Version.ToString();
        }
    }
}
