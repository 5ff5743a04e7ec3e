import Foundation
import Testing

/// The citations in the tree must resolve inside the repository: the word
/// rule followed by a backticked dotted ID names a rule of the catalogue (a
/// `# rule:` header in corpora/rules), and docs/kernel-rules.md#<anchor> names
/// an anchor of that file (an explicit `<a id>` or a heading's slug). Nothing
/// may point at the notes outside the repository any more.
enum Citations {
    /// The repository root: three levels up from
    /// Tests/ConformTests/CitationTests.swift.
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// This file, relative to the root: it names the forbidden strings.
    static let selfPath = "Tests/ConformTests/" + URL(fileURLWithPath: #filePath).lastPathComponent

    static let docPath = "docs/kernel-rules.md"

    /// Paths, relative to the root and sorted, of the files under `dir` whose
    /// names end in one of `suffixes`.
    static func files(under dir: String, endingIn suffixes: [String]) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: root + "/" + dir) else { return [] }
        var found: [String] = []
        while let p = walker.nextObject() as? String {
            if suffixes.contains(where: { p.hasSuffix($0) }) { found.append(dir + "/" + p) }
        }
        return found.sorted()
    }

    /// A file's text, or nil when it is missing or not UTF-8.
    static func text(_ path: String) -> String? {
        try? String(contentsOfFile: root + "/" + path, encoding: .utf8)
    }

    /// Where citations may appear: the sources, the tests, the docs, the
    /// README and the catalogue's headers.
    static var citingFiles: [String] {
        files(under: "Sources", endingIn: [".swift"]) + files(under: "Tests", endingIn: [".swift"])
            + files(under: "docs", endingIn: [".md"]) + ["README.md"]
            + files(under: "corpora/rules", endingIn: [".vfs"])
    }

    /// Every match of `pattern` in `paths`: `path:line` and the first
    /// capture group. Matching runs over a whole file, so a citation broken
    /// across lines (Markdown) is found too.
    static func matches(of pattern: String, in paths: [String]) -> [(place: String, value: String)] {
        guard let regex = try? NSRegularExpression(pattern: pattern) else {
            Issue.record("bad pattern \(pattern)")
            return []
        }
        var found: [(place: String, value: String)] = []
        for path in paths {
            guard let text = text(path) else { continue }
            for m in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                guard let whole = Range(m.range, in: text), let value = Range(m.range(at: 1), in: text) else { continue }
                let line = text[..<whole.lowerBound].reduce(1) { $1 == "\n" ? $0 + 1 : $0 }
                found.append(("\(path):\(line)", String(text[value])))
            }
        }
        return found
    }

    /// The IDs of the catalogue: every `# rule: ID` header line.
    static func ruleIDs() -> Set<String> {
        var ids: Set<String> = []
        for path in files(under: "corpora/rules", endingIn: [".vfs"]) {
            for line in (text(path) ?? "").components(separatedBy: "\n") where line.hasPrefix("# rule:") {
                ids.insert(line.dropFirst("# rule:".count).trimmingCharacters(in: .whitespaces))
            }
        }
        return ids
    }

    /// The anchors of docs/kernel-rules.md: explicit `<a id="…">` ids and the
    /// GitHub slugs of its headings (outside fenced code).
    static func anchors() -> Set<String> {
        var ids: Set<String> = []
        var inFence = false
        for line in (text(docPath) ?? "").components(separatedBy: "\n") {
            if line.hasPrefix("```") { inFence.toggle(); continue }
            if inFence { continue }
            if line.hasPrefix("#") {
                ids.insert(slug(String(line.drop(while: { $0 == "#" }))))
            }
        }
        for m in matches(of: #"<a\s+id="([^"]+)""#, in: [docPath]) { ids.insert(m.value) }
        return ids
    }

    /// GitHub's heading slug: lower case, only letters, digits, spaces,
    /// hyphens and underscores kept, spaces turned into hyphens.
    static func slug(_ heading: String) -> String {
        let kept = heading.trimmingCharacters(in: .whitespaces).lowercased()
            .filter { $0.isLetter || $0.isNumber || $0 == " " || $0 == "-" || $0 == "_" }
        return String(kept.map { $0 == " " ? "-" : $0 })
    }

    /// `rule` and a backticked dotted ID, e.g. a catalogue family and name.
    static let rulePattern = #"\b[Rr]ule\s+`([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_@-]+)+)`"#
    /// The docs file and an anchor.
    static let docPattern = #"docs/kernel-rules\.md#([A-Za-z0-9_-]+)"#
}

@Suite("Citations resolve inside the repository")
struct CitationTests {
    @Test("every rule `ID` citation names a rule of corpora/rules")
    func ruleCitations() {
        let ids = Citations.ruleIDs()
        #expect(ids.count >= 50, "\(ids.count) rule IDs in corpora/rules")
        let cited = Citations.matches(of: Citations.rulePattern, in: Citations.citingFiles)
        let bad = cited.filter { !ids.contains($0.value) }.map { "\($0.place): \($0.value)" }
        #expect(bad.isEmpty, "citations of rules that corpora/rules does not have:\n\(bad.joined(separator: "\n"))")
    }

    @Test("every docs/kernel-rules.md#<anchor> citation, and every #anchor link inside the doc, names an anchor of the doc")
    func anchorCitations() {
        let anchors = Citations.anchors()
        #expect(anchors.count >= 20, "\(anchors.count) anchors in \(Citations.docPath)")
        let cited = Citations.matches(of: Citations.docPattern, in: Citations.citingFiles)
            + Citations.matches(of: #"\]\(#([A-Za-z0-9_-]+)\)"#, in: [Citations.docPath])
        let bad = cited.filter { !anchors.contains($0.value) }.map { "\($0.place): #\($0.value)" }
        #expect(bad.isEmpty, "citations of anchors that \(Citations.docPath) does not have:\n\(bad.joined(separator: "\n"))")
    }

    @Test("the tree cites enough to make the checks above meaningful")
    func notVacuous() {
        let rules = Citations.matches(of: Citations.rulePattern, in: Citations.citingFiles)
        let docs = Citations.matches(of: Citations.docPattern, in: Citations.citingFiles)
        #expect(rules.count >= 20, "\(rules.count) rule citations")
        #expect(docs.count >= 20, "\(docs.count) docs citations")
        #expect(rules.count + docs.count >= 40)
    }

    @Test("every catalogue rule's refs cite a section of docs/kernel-rules.md")
    func catalogueRefs() {
        var bad: [String] = []
        for path in Citations.files(under: "corpora/rules", endingIn: [".vfs"]) {
            let refs = (Citations.text(path) ?? "").components(separatedBy: "\n").filter { $0.hasPrefix("# refs:") }
            if refs.count != 1 || !refs[0].contains(Citations.docPath + "#") {
                bad.append("\(path): \(refs.first ?? "no refs line")")
            }
        }
        #expect(bad.isEmpty, "refs without a docs citation:\n\(bad.joined(separator: "\n"))")
    }

    @Test("nothing under Sources, Tests, docs, corpora/rules or the README points at the notes outside the repository")
    func noOutsideReferences() {
        let textFiles = [".swift", ".c", ".h", ".md", ".modulemap", ".vfs", ".txt"]
        let paths = (Citations.files(under: "Sources", endingIn: textFiles) + Citations.files(under: "Tests", endingIn: textFiles)
            + Citations.files(under: "docs", endingIn: [".md"]) + Citations.files(under: "corpora/rules", endingIn: [".vfs"])
            + ["README.md"]).filter { $0 != Citations.selfPath }
        let forbidden = ["vfio-" + "semantics", "\u{A7}"]
        var bad: [String] = []
        for path in paths {
            guard let text = Citations.text(path) else { continue }
            for (i, line) in text.components(separatedBy: "\n").enumerated() {
                for f in forbidden where line.contains(f) {
                    bad.append("\(path):\(i + 1): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        // The numbered rules of those notes ("rule 44", "rules 3-5").
        for m in Citations.matches(of: #"\b([Rr]ules?\s+[0-9]+)\b"#, in: paths) {
            bad.append("\(m.place): \(m.value)")
        }
        #expect(bad.isEmpty, "references to the notes outside the repository:\n\(bad.joined(separator: "\n"))")
    }
}
