import Conform
import Replay
import Trace

/// One self-contained HTML page (inline CSS and SVG, a few lines of script,
/// nothing fetched) showing what `replay`, `diff`, `bisect` or `conform`
/// found: per divergent event its text form, its differences and, for a
/// bitmap, the container's mappings and both buffers drawn to scale from
/// the whole range down to single pages around the first difference.
///
/// Everything the page shows from a trace is escaped: a trace's header and
/// events are untrusted input.
public struct HTMLReport {
    public let title: String
    /// Name–value lines under the title: the inputs, the backend, the profile.
    public var facts: [(String, String)] = []
    /// The run's closing lines (the summary `replay` prints).
    public var summary: [String] = []
    /// How many divergences are drawn; the rest are counted.
    public let cardLimit: Int
    /// The heading over the cards.
    public var cardHeading = "Divergences"
    public private(set) var cardsDrawn = 0
    public private(set) var cardsNotDrawn = 0
    private var sections: [String] = []
    private var cards: [String] = []

    public init(title: String, cardLimit: Int = 50) {
        self.title = title
        self.cardLimit = cardLimit
    }

    /// Adds a divergent step's card; returns its anchor, or nil when past
    /// the limit (then only counted).
    @discardableResult
    public mutating func addDivergence(_ step: ReplayStep, context: [(String, String)] = [], note: String? = nil) -> String? {
        guard cardsDrawn < cardLimit else {
            cardsNotDrawn += 1
            return nil
        }
        cardsDrawn += 1
        let id = "d\(cardsDrawn)"
        var h = "<section class=\"card divergence\" id=\"\(id)\">\n"
        h += "<h3><a href=\"#\(id)\">event #\(step.expected.seq)</a> <code>\(HTML.text(HTML.clip(HTMLReport.call(step))))</code></h3>\n"
        h += HTMLReport.context(context + (note.map { [("note", $0)] } ?? []))
        h += HTMLReport.body(of: step)
        h += "</section>\n"
        cards.append(h)
        return id
    }

    /// The `conform` verdicts as a table, rules down and targets across,
    /// each verdict other than PASS linking to its card.
    public mutating func addMatrix(_ runs: [TargetResults]) {
        guard let rules = runs.first?.results.map(\.rule) else { return }
        var h = "<section class=\"matrix\">\n<h2>Verdicts</h2>\n<table class=\"verdicts\">\n<thead><tr><th>rule</th>"
        for run in runs { h += "<th>\(HTML.text(run.target))</th>" }
        h += "</tr></thead>\n<tbody>\n"
        var anchors: [[String?]] = runs.map { _ in Array(repeating: nil, count: rules.count) }
        for (t, run) in runs.enumerated() {
            for (i, r) in run.results.enumerated() where r.verdict != .pass && r.verdict != .conf {
                anchors[t][i] = addRuleCard(r, target: run.target, anchor: "r\(t)-\(i)")
            }
        }
        for (i, rule) in rules.enumerated() {
            h += "<tr><th class=\"rule\" title=\"\(HTML.attribute(rule.title))\">\(HTML.text(rule.id))</th>"
            for (t, run) in runs.enumerated() {
                guard i < run.results.count else { h += "<td></td>"; continue }
                let r = run.results[i], v = r.verdict.rawValue
                let cell = anchors[t][i].map { "<a href=\"#\($0)\">\(v)</a>" } ?? v
                // CONF says why in its tooltip; FAIL, BROK and WARN link to a card.
                let tip = r.verdict == .conf ? " title=\"\(HTML.attribute(r.detail))\"" : ""
                h += "<td class=\"v-\(v.lowercased())\"\(tip)>\(cell)</td>"
            }
            h += "</tr>\n"
        }
        h += "</tbody>\n</table>\n<p class=\"keys\">CONF: not applicable or not runnable here (the cell's tooltip says why); "
        h += "FAIL, BROK and WARN link to their card below.</p>\n</section>\n"
        sections.append(h)
    }

    private mutating func addRuleCard(_ r: RuleResult, target: String, anchor: String) -> String {
        var h = "<section class=\"card rule v-\(r.verdict.rawValue.lowercased())\" id=\"\(anchor)\">\n"
        h += "<h3><a href=\"#\(anchor)\">\(r.verdict.rawValue) \(HTML.text(r.rule.id))</a> on \(HTML.text(target))</h3>\n"
        var facts: [(String, String)] = [("rule", r.rule.title), ("detail", r.detail)]
        if let s = r.scenario { facts.append(("scenario", s)) }
        if !r.rule.refs.isEmpty { facts.append(("refs", r.rule.refs)) }
        h += HTMLReport.context(facts)
        if let step = r.firstDivergence {
            h += "<p class=\"event\">first divergent event #\(step.expected.seq) <code>\(HTML.text(HTML.clip(HTMLReport.call(step))))</code></p>\n"
            h += HTMLReport.body(of: step)
        }
        h += "</section>\n"
        cards.append(h)
        return anchor
    }

    /// `bisect`'s neighbours in order, the change points linking to their
    /// first differing event.
    public mutating func addChangePoints(_ comparisons: [Bisection.Comparison]) {
        var h = "<section class=\"changes\">\n<h2>Change points</h2>\n<table class=\"changes\">\n"
        h += "<thead><tr><th>from</th><th>to</th><th>outcomes</th><th>first differing event</th></tr></thead>\n<tbody>\n"
        var first = true
        for c in comparisons {
            h += "<tr><td>\(HTML.text(c.from))</td><td>\(HTML.text(c.to))</td>"
            guard let step = c.firstChange else {
                h += "<td class=\"same\">same</td><td></td></tr>\n"
                continue
            }
            let anchor = addDivergence(step, context: [("expected", c.from), ("actual", c.to)])
            let label = first ? "FIRST CHANGE" : "change"
            first = false
            let event = "#\(step.expected.seq) <code>\(HTML.text(HTML.clip(HTMLReport.call(step), 160)))</code>"
            h += "<td class=\"change\">\(label)</td><td>\(anchor.map { "<a href=\"#\($0)\">\(event)</a>" } ?? event)</td></tr>\n"
        }
        h += "</tbody>\n</table>\n</section>\n"
        sections.append(h)
    }

    public func render() -> String {
        var h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        h += "<title>\(HTML.text(title))</title>\n<style>\n\(HTMLReport.style)</style>\n</head>\n<body>\n"
        h += HTMLReport.patterns
        h += "<header>\n<h1>\(HTML.text(title))</h1>\n\(HTMLReport.context(facts))</header>\n"
        if !summary.isEmpty {
            h += "<p class=\"summary\">" + summary.map(HTML.text).joined(separator: "<br>\n") + "</p>\n"
        }
        h += sections.joined()
        if !cards.isEmpty {
            h += "<h2>\(cardHeading)</h2>\n<p class=\"keys\">j / k: next / previous card. Each picture: the container's "
            h += "mappings (holes hatched), both buffers' dirty pages, and the differing pages inside and outside "
            h += "mappings; darker is more pages of the cell. Each picture below the first zooms into the framed part "
            h += "of the one above, down to one page a cell.</p>\n"
            h += cards.joined()
        }
        if cardsNotDrawn > 0 {
            h += "<p class=\"more\">\(cardsNotDrawn) more divergent event\(cardsNotDrawn == 1 ? "" : "s") not drawn "
            h += "(at most \(cardLimit) are).</p>\n"
        }
        h += "<script>\n\(HTMLReport.script)</script>\n</body>\n</html>\n"
        return h
    }

    // MARK: - Pieces

    /// The event's call in the text form, without its `#seq` (the heading
    /// names it).
    static func call(_ step: ReplayStep) -> String {
        let line = step.expected.inputLine
        let prefix = "#\(step.expected.seq) "
        return line.hasPrefix(prefix) ? String(line.dropFirst(prefix.count)) : line
    }

    static func context(_ facts: [(String, String)]) -> String {
        guard !facts.isEmpty else { return "" }
        var h = "<dl class=\"facts\">"
        for (k, v) in facts { h += "<dt>\(HTML.text(k))</dt><dd>\(HTML.text(HTML.clip(v, 2000)))</dd>" }
        return h + "</dl>\n"
    }

    /// A step's differences, both events in the text form, and pictures of
    /// its bitmap difference when it has one.
    static func body(of step: ReplayStep) -> String {
        var h = "<ul class=\"differences\">\n"
        for l in step.differenceLines(indent: "") { h += "<li>\(HTML.text(HTML.clip(l)))</li>\n" }
        h += "</ul>\n"
        var pe = TextPrinter(), pa = TextPrinter()
        h += "<details><summary>both events in the text form</summary><pre>"
        h += "expected: " + HTML.text(HTML.clip(pe.line(for: step.expected), 4000)) + "\n"
        h += "actual:   " + HTML.text(HTML.clip(pa.line(for: step.actual), 4000)) + "</pre></details>\n"
        for case .bitmap(let d) in step.differences {
            guard let e = step.expected.bitmapOutcome?.out else { continue }
            let a = step.actual.bitmapOutcome?.out ?? BitmapBytes()
            let focus = (d.inMappings.first ?? d.outsideMappings.first)?.pages.lowerBound ?? 0
            let levels = BitmapPicture.zoom(expected: e, actual: a, coverage: step.coverage, base: d.base, pgsize: d.pgsize,
                                            focus: focus)
            h += mappingList(step.coverage, base: d.base, pgsize: d.pgsize)
            for (i, p) in levels.enumerated() {
                h += SVGPicture.render(p, level: i, next: i + 1 < levels.count ? levels[i + 1].window : nil,
                                       mappingStarts: SVGPicture.edges(step.coverage, in: p.window))
            }
        }
        return h
    }

    /// The mappings under the bitmap, as IOVA ranges (the first 16).
    static func mappingList(_ coverage: [Range<UInt64>], base: UInt64, pgsize: UInt64) -> String {
        guard !coverage.isEmpty else { return "<p class=\"mappings\">no mapping under this bitmap</p>\n" }
        let shown = coverage.prefix(16).map { r in
            "\(TextSyntax.hex(base &+ r.lowerBound &* pgsize))..\(TextSyntax.hex(base &+ r.upperBound &* pgsize &- 1))"
        }
        let more = coverage.count > 16 ? " and \(coverage.count - 16) more" : ""
        return "<p class=\"mappings\">\(coverage.count) mapping\(coverage.count == 1 ? "" : "s") under this bitmap: "
            + HTML.text(shown.joined(separator: ", ") + more) + "</p>\n"
    }

    static let patterns = """
    <svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>
    <pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
    <rect width="6" height="6" fill="#f2f2f2"/><line x1="0" y1="0" x2="0" y2="6" stroke="#b8b8b8" stroke-width="2"/>
    </pattern></defs></svg>

    """

    static let style = """
    body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1100px; }
    code, pre { font: 12px/1.35 ui-monospace, monospace; }
    pre { white-space: pre-wrap; word-break: break-all; background: #f6f6f6; padding: .5em; }
    dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0 1em; margin: .4em 0; }
    dl.facts dt { color: #666; } dl.facts dd { margin: 0; word-break: break-all; }
    .card { border: 1px solid #ccc; border-radius: 4px; padding: .2em 1em .8em; margin: 1em 0; }
    .card:target { border-color: #36c; box-shadow: 0 0 0 2px #36c5; }
    .card h3 a { color: inherit; } .card h3 code { font-weight: normal; }
    table { border-collapse: collapse; } th, td { border: 1px solid #ddd; padding: 1px 6px; text-align: left; }
    th.rule { font-weight: normal; font-family: ui-monospace, monospace; font-size: 12px; }
    td.v-pass { background: #dff3df; } td.v-fail { background: #f7c9c9; } td.v-brok { background: #e8c8f0; }
    td.v-conf { background: #f6eac0; } td.v-warn { background: #c8ecef; }
    td.change { color: #b00; font-weight: bold; } td.same { color: #777; }
    figure { margin: .6em 0; } figcaption { color: #555; font-size: 12px; }
    svg.bitmap { width: 100%; height: auto; display: block; }
    svg.bitmap text { font: 11px ui-monospace, monospace; fill: #444; }
    .bin.clean, .bin.none { fill: #fafafa; }
    .bin.hole { fill: url(#hatch); }
    .bin.mapped.l1 { fill: #c6d8ef; } .bin.mapped.l2 { fill: #9dbde3; } .bin.mapped.l3 { fill: #6f9dd3; } .bin.mapped.l4 { fill: #3f78bd; }
    .bin.dirty.l1 { fill: #c7e5c3; } .bin.dirty.l2 { fill: #93cc8b; } .bin.dirty.l3 { fill: #5aa951; } .bin.dirty.l4 { fill: #2b7a23; }
    .bin.missing.l1 { fill: #f6c2c2; } .bin.missing.l2 { fill: #ec8b8b; } .bin.missing.l3 { fill: #dc4a4a; } .bin.missing.l4 { fill: #b40f0f; }
    .bin.extra.l1 { fill: #fbdcb8; } .bin.extra.l2 { fill: #f6b56c; } .bin.extra.l3 { fill: #ee8a1d; } .bin.extra.l4 { fill: #c56400; }
    .bin.outside.l1 { fill: #dcd3e6; } .bin.outside.l2 { fill: #b9a8cd; } .bin.outside.l3 { fill: #9277b1; } .bin.outside.l4 { fill: #634589; }
    .edge { stroke: #fff; stroke-width: 2; }
    .zoom { fill: none; stroke: #222; stroke-width: 1.5; stroke-dasharray: 4 2; }

    """

    /// j and k move between cards; the last line marks the body so that a
    /// test can tell the script ran to its end.
    static let script = """
    (function () {
      var cards = Array.prototype.slice.call(document.querySelectorAll('section.card'));
      var at = -1;
      document.addEventListener('keydown', function (ev) {
        if (ev.target && /input|textarea/i.test(ev.target.tagName)) return;
        if (ev.key !== 'j' && ev.key !== 'k' || cards.length === 0) return;
        at = Math.max(0, Math.min(cards.length - 1, at + (ev.key === 'j' ? 1 : -1)));
        location.hash = cards[at].id;
      });
      document.body.dataset.ready = String(document.querySelectorAll('svg.bitmap').length);
    })();

    """
}

/// One ``BitmapPicture`` as an SVG figure: six rows of cells, equal
/// neighbouring cells merged into one rectangle with a tooltip.
enum SVGPicture {
    static let labelWidth = 70.0, plotWidth = 880.0, rowHeight = 16.0, rowGap = 4.0

    static let rows: [(BitmapPicture.Row, String, String)] = [
        (.mapped, "mappings", "inside mappings"),
        (.expected, "expected", "expected dirty"),
        (.actual, "actual", "actually dirty"),
        (.missing, "missing", "expected dirty, got clean, inside mappings"),
        (.extra, "extra", "expected clean, got dirty, inside mappings"),
        (.outside, "outside", "differing outside every mapping"),
    ]

    /// Shade 0 (none) to 4 (every page of the cell).
    static func level(_ n: UInt64, of pages: UInt64) -> Int {
        guard n > 0, pages > 0 else { return 0 }
        return Int(min(4, (n * 4 + pages - 1) / pages))
    }

    static func number(_ x: Double) -> String {
        let r = (x * 100).rounded() / 100
        return r == r.rounded() ? String(Int(r)) : String(r)
    }

    /// Where mappings begin inside `window` (but at its first page), when
    /// there are few enough to draw: neighbouring mappings then show apart.
    static func edges(_ coverage: [Range<UInt64>], in window: Range<UInt64>, limit: Int = 128) -> [UInt64] {
        let lo = coverage.partitioningIndex(where: { $0.upperBound > window.lowerBound })
        var out: [UInt64] = []
        for r in coverage[lo...] {
            guard r.lowerBound < window.upperBound else { break }
            if r.lowerBound > window.lowerBound { out.append(r.lowerBound) }
            if out.count > limit { return [] }
        }
        return out
    }

    static func render(_ p: BitmapPicture, level depth: Int, next: Range<UInt64>?, mappingStarts: [UInt64] = []) -> String {
        let bins = p.binCount
        let height = Double(rows.count) * (rowHeight + rowGap) + 18
        let width = labelWidth + plotWidth + 4
        var s = "<figure><svg class=\"bitmap\" data-level=\"\(depth)\" viewBox=\"0 0 \(number(width)) \(number(height))\" "
        s += "xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">\n"
        func x(_ bin: Int) -> Double { labelWidth + plotWidth * Double(bin) / Double(bins) }
        for (r, (row, label, meaning)) in rows.enumerated() {
            let y = Double(r) * (rowHeight + rowGap)
            s += "<text x=\"0\" y=\"\(number(y + 12))\">\(label)</text>\n"
            var i = 0
            while i < bins {
                let l = level(p.count(row, bin: i), of: UInt64(p.pages(ofBin: i).count))
                var j = i + 1
                var n = p.count(row, bin: i)
                while j < bins && level(p.count(row, bin: j), of: UInt64(p.pages(ofBin: j).count)) == l {
                    n += p.count(row, bin: j)
                    j += 1
                }
                let pages = p.pages(ofBin: i).lowerBound..<p.pages(ofBin: j - 1).upperBound
                let cls: String
                switch (row, l) {
                case (.mapped, 0): cls = "hole"
                case (.mapped, _): cls = "mapped l\(l)"
                case (.expected, 0), (.actual, 0): cls = "clean"
                case (.expected, _), (.actual, _): cls = "dirty l\(l)"
                case (_, 0): cls = "none"
                default: cls = "\(row.rawValue) l\(l)"
                }
                let iova = p.iovas(pages)
                let range = pages.count == 1 ? "page \(pages.lowerBound)" : "pages \(pages.lowerBound)..\(pages.upperBound - 1)"
                let tip = "\(range) (iova \(TextSyntax.hex(iova.lowerBound))..\(TextSyntax.hex(iova.upperBound))): "
                    + "\(n) of \(pages.count) \(meaning)"
                s += "<rect class=\"bin \(cls)\" data-row=\"\(row.rawValue)\" data-pages=\"\(pages.lowerBound)-\(pages.upperBound)\" "
                s += "x=\"\(number(x(i)))\" y=\"\(number(y))\" width=\"\(number(max(0.5, x(j) - x(i))))\" height=\"\(number(rowHeight))\">"
                s += "<title>\(tip)</title></rect>\n"
                i = j
            }
        }
        for start in mappingStarts {
            let at = labelWidth + plotWidth * Double(start - p.window.lowerBound) / Double(p.window.count)
            s += "<line class=\"edge\" x1=\"\(number(at))\" x2=\"\(number(at))\" y1=\"0\" y2=\"\(number(rowHeight))\"/>\n"
        }
        if let next, p.window.count > 0 {
            let span = Double(p.window.count)
            let lo = labelWidth + plotWidth * Double(next.lowerBound - p.window.lowerBound) / span
            let w = max(2, plotWidth * Double(next.count) / span)
            s += "<rect class=\"zoom\" x=\"\(number(lo))\" y=\"0\" width=\"\(number(w))\" height=\"\(number(height - 20))\"/>\n"
        }
        let axisY = number(height - 4)
        let first = p.iovas(p.window.lowerBound..<p.window.lowerBound + 1).lowerBound
        let last = p.iovas(p.window).upperBound
        s += "<text x=\"\(number(labelWidth))\" y=\"\(axisY)\">\(TextSyntax.hex(first))</text>\n"
        s += "<text x=\"\(number(labelWidth + plotWidth))\" y=\"\(axisY)\" text-anchor=\"end\">\(TextSyntax.hex(last))</text>\n"
        s += "</svg>\n<figcaption>"
        let pages = p.window.count == 1 ? "page \(p.window.lowerBound)" : "pages \(p.window.lowerBound)..\(p.window.upperBound - 1)"
        s += "\(depth == 0 ? "the whole bitmap" : "zoom \(depth)"): \(pages), \(p.binWidth == 1 ? "one page" : "\(p.binWidth) pages") a cell, "
        s += "\(TextSyntax.size(p.pgsize)) pages</figcaption></figure>\n"
        return s
    }
}

/// Escaping for text and attribute values; control characters become
/// U+FFFD so that nothing a trace holds can change the page's structure.
enum HTML {
    static func text(_ s: String) -> String {
        var o = ""
        o.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            case "\n", "\t": o.unicodeScalars.append(c)
            default:
                if c.value < 0x20 || (0x7F..<0xA0).contains(c.value) { o += "\u{FFFD}" } else { o.unicodeScalars.append(c) }
            }
        }
        return o
    }

    static func attribute(_ s: String) -> String { text(s).replacingNewlines() }

    /// At most `limit` characters, marked where cut.
    static func clip(_ s: String, _ limit: Int = 600) -> String {
        s.count <= limit ? s : String(s.prefix(limit)) + "… (\(s.count - limit) more characters)"
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        String(map { $0 == "\n" || $0 == "\t" ? " " : $0 })
    }
}

extension HTMLReport {
    /// Adds `step` as `replay` and `diff` count it: a card for a divergent
    /// step, one marked as not counted for a step that differs only
    /// outside mappings under `--lenient`; nothing otherwise.
    public mutating func add(_ step: ReplayStep, _ kind: ReplaySummary.Kind) {
        switch kind {
        case .divergent: addDivergence(step)
        case .outsideMappingsOnly: addDivergence(step, note: "differs only outside mappings: not counted (--lenient)")
        case .matched, .skipped: break
        }
    }
}
