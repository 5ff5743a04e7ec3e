/// Output formats for conformance results.
public enum ReportFormat: String, Sendable, CaseIterable {
    /// One line per rule and a summary; colour only on a terminal.
    case text
    /// KTAP version 1, as the kernel's selftests print it (`# SKIP` for CONF).
    case ktap
    /// JUnit XML: one testsuite per backend, one testcase per rule.
    case junit
    /// One JSON object per line.
    case json
}

/// The results of one run on one target (a backend with its profile).
public struct TargetResults: Sendable {
    public let target: String
    public let results: [RuleResult]

    public init(target: String, results: [RuleResult]) {
        self.target = target
        self.results = results
    }

    public func count(_ v: Verdict) -> Int { results.filter { $0.verdict == v }.count }

    public var summary: String {
        "\(results.count) rules on \(target): " + Verdict.allCases.map { "\(count($0)) \($0.rawValue)" }.joined(separator: ", ")
    }
}

public enum Reporter {
    public static func render(_ runs: [TargetResults], format: ReportFormat, color: Bool = false) -> String {
        switch format {
        case .text: runs.count > 1 ? matrix(runs, color: color) : text(runs, color: color)
        case .ktap: ktap(runs)
        case .junit: junit(runs)
        case .json: json(runs)
        }
    }

    static func paint(_ v: Verdict, _ color: Bool) -> String {
        guard color else { return v.rawValue }
        let code: String
        switch v {
        case .pass: code = "32"
        case .fail: code = "31"
        case .brok: code = "35"
        case .conf: code = "33"
        case .warn: code = "36"
        }
        return "\u{1B}[\(code)m\(v.rawValue)\u{1B}[0m"
    }

    static func text(_ runs: [TargetResults], color: Bool) -> String {
        var out: [String] = []
        for run in runs {
            for r in run.results {
                out.append("\(paint(r.verdict, color)) \(r.rule.id): \(r.rule.title)")
                if r.verdict != .pass { out.append("     \(r.detail)") }
            }
            out.append(run.summary)
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// Rules down, targets across: where behaviour changes between profiles.
    static func matrix(_ runs: [TargetResults], color: Bool) -> String {
        var out: [String] = []
        let width = max(4, runs.flatMap { $0.results.map(\.rule.id.count) }.max() ?? 4)
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        let names = runs.map { $0.target.split(separator: ":").last.map(String.init) ?? $0.target }
        out.append(pad("rule", width) + "  " + names.map { pad($0, 7) }.joined(separator: " "))
        guard let ids = runs.first?.results.map(\.rule.id) else { return "" }
        for (i, id) in ids.enumerated() {
            let cells = runs.map { run -> String in
                let v = run.results[i].verdict
                return paint(v, color) + String(repeating: " ", count: 7 - v.rawValue.count)
            }
            out.append(pad(id, width) + "  " + cells.joined(separator: " "))
        }
        for run in runs {
            for r in run.results where r.verdict == .fail || r.verdict == .brok {
                out.append("\(r.verdict.rawValue) \(r.rule.id) on \(run.target): \(r.detail)")
            }
        }
        for run in runs { out.append(run.summary) }
        return out.joined(separator: "\n") + "\n"
    }

    /// KTAP version 1. One target: a flat plan; several: one subtest each.
    static func ktap(_ runs: [TargetResults]) -> String {
        var out = ["KTAP version 1"]
        func lines(_ run: TargetResults, indent: String) -> [String] {
            var l = ["\(indent)1..\(run.results.count)"]
            for (i, r) in run.results.enumerated() {
                let detail = oneLine(r.detail)
                switch r.verdict {
                case .pass: l.append("\(indent)ok \(i + 1) \(r.rule.id)")
                case .warn:
                    l.append("\(indent)# WARN: \(detail)")
                    l.append("\(indent)ok \(i + 1) \(r.rule.id)")
                case .conf: l.append("\(indent)ok \(i + 1) \(r.rule.id) # SKIP \(detail)")
                case .fail, .brok:
                    l.append("\(indent)# \(r.verdict.rawValue): \(detail)")
                    l.append("\(indent)not ok \(i + 1) \(r.rule.id)")
                }
            }
            return l
        }
        if runs.count == 1 {
            out.append("# \(runs[0].target)")
            out += lines(runs[0], indent: "")
            out.append("# \(runs[0].summary)")
        } else {
            out.append("1..\(runs.count)")
            for (i, run) in runs.enumerated() {
                out.append("    KTAP version 1")
                out.append("    # Subtest: \(run.target)")
                out += lines(run, indent: "    ")
                let ok = run.count(.fail) == 0 && run.count(.brok) == 0
                out.append("\(ok ? "ok" : "not ok") \(i + 1) \(run.target)")
            }
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func oneLine(_ s: String) -> String {
        String(s.map { $0 == "\n" || $0 == "#" ? " " : $0 })
    }

    /// `s` with each scalar that `replace` maps replaced by its text.
    static func escape(_ s: String, _ replace: (Unicode.Scalar) -> String?) -> String {
        var o = ""
        for c in s.unicodeScalars {
            if let r = replace(c) { o += r } else { o.unicodeScalars.append(c) }
        }
        return o
    }

    static func xml(_ s: String) -> String {
        escape(s) { c in
            switch c {
            case "&": "&amp;"
            case "<": "&lt;"
            case ">": "&gt;"
            case "\"": "&quot;"
            case "'": "&apos;"
            default: c.value < 0x20 && c != "\n" && c != "\t" ? " " : nil
            }
        }
    }

    static func junit(_ runs: [TargetResults]) -> String {
        func counts(_ rs: [RuleResult]) -> String {
            "tests=\"\(rs.count)\" failures=\"\(rs.filter { $0.verdict == .fail }.count)\" errors=\"\(rs.filter { $0.verdict == .brok }.count)\" skipped=\"\(rs.filter { $0.verdict == .conf }.count)\""
        }
        var out = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                   "<testsuites name=\"vfiotrace conform\" \(counts(runs.flatMap(\.results)))>"]
        for run in runs {
            out.append("  <testsuite name=\"\(xml(run.target))\" \(counts(run.results))>")
            for r in run.results {
                let head = "    <testcase classname=\"vfiotrace.\(xml(run.target))\" name=\"\(xml(r.rule.id))\""
                let d = xml(r.detail)
                switch r.verdict {
                case .pass: out.append(head + "/>")
                case .warn: out.append(head + "><system-out>WARN: \(d)</system-out></testcase>")
                case .conf: out.append(head + "><skipped message=\"\(d)\"/></testcase>")
                case .fail: out.append(head + "><failure type=\"FAIL\" message=\"\(d)\">\(xml(r.rule.title))\n\(d)</failure></testcase>")
                case .brok: out.append(head + "><error type=\"BROK\" message=\"\(d)\">\(d)</error></testcase>")
                }
            }
            out.append("  </testsuite>")
        }
        out.append("</testsuites>")
        return out.joined(separator: "\n") + "\n"
    }

    static func jsonString(_ s: String) -> String {
        "\"" + escape(s) { c in
            switch c {
            case "\"": "\\\""
            case "\\": "\\\\"
            case "\n": "\\n"
            case "\t": "\\t"
            default:
                c.value < 0x20 ? "\\u" + String(repeating: "0", count: 4 - String(c.value, radix: 16).count) + String(c.value, radix: 16) : nil
            }
        } + "\""
    }

    static func json(_ runs: [TargetResults]) -> String {
        var out: [String] = []
        for run in runs {
            for r in run.results {
                out.append("{\"rule\":\(jsonString(r.rule.id)),\"title\":\(jsonString(r.rule.title)),\"backend\":\(jsonString(run.target)),"
                           + "\"verdict\":\"\(r.verdict.rawValue)\",\"detail\":\(jsonString(r.detail)),"
                           + "\"scenario\":\(r.scenario.map(jsonString) ?? "null"),\"refs\":\(jsonString(r.rule.refs))}")
            }
        }
        return out.joined(separator: "\n") + "\n"
    }
}
