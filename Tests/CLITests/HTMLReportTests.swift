import Foundation
import Testing

/// Headless Chromium from Debian (`chromium-headless-shell`, or the full
/// `chromium`), which scripts/test installs.
enum Browser {
    static let path: String? = {
        for name in ["chromium-headless-shell", "chromium"] {
            for dir in ["/usr/bin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
                return "\(dir)/\(name)"
            }
        }
        return nil
    }()

    static let missing = "needs Debian's chromium-headless-shell (scripts/test installs it)"

    /// What the browser made of `page`: the DOM after its script ran, the
    /// console messages (an uncaught exception is one), and a screenshot.
    struct Rendering {
        var dom: String
        var console: [String]
        var screenshot: String
    }

    static func render(_ page: String, in dir: String, height: Int = 1600) throws -> Rendering {
        let profile = dir + "/browser-profile"
        let common = ["--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(profile)",
                      "--enable-logging=stderr", "--v=0", "--window-size=1200,\(height)"]
        let url = URL(fileURLWithPath: page).absoluteString
        let dump = try CLI.run(common + ["--dump-dom", url], program: path!)
        let shot = dir + "/" + URL(fileURLWithPath: page).deletingPathExtension().lastPathComponent + ".png"
        let taken = try CLI.run(common + ["--screenshot=\(shot)", url], program: path!)
        #expect(dump.code == 0 && taken.code == 0, "\(dump.err)\n\(taken.err)")
        let console = (dump.err + taken.err).split(separator: "\n").filter { $0.contains(":CONSOLE") }.map(String.init)
        return Rendering(dom: dump.out, console: console, screenshot: shot)
    }

    /// The screenshot's colours (scripts/png-colours): the share of pixels
    /// not in the most common colour, and each colour's pixel count.
    static func colours(_ png: String) throws -> (ink: Double, counts: [String: Int]) {
        let r = try CLI.run([CLI.packageRoot + "/scripts/png-colours", png], program: "/usr/bin/env")
        #expect(r.code == 0, "\(r.err)")
        var ink = 0.0
        var counts: [String: Int] = [:]
        for line in r.out.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.first == "ink", f.count == 2 { ink = Double(f[1]) ?? 0 }
            if f.first == "rgb", f.count == 3 { counts[String(f[1])] = Int(f[2]) }
        }
        return (ink, counts)
    }
}

/// The substring of `html` from the element with `id` to the end of its
/// section.
func section(_ id: String, of html: String) -> String? {
    guard let start = html.range(of: "id=\"\(id)\"") else { return nil }
    let rest = html[start.lowerBound...]
    guard let end = rest.range(of: "</section>") else { return nil }
    return String(rest[..<end.upperBound])
}

func occurrences(_ needle: String, in s: String) -> Int {
    s.components(separatedBy: needle).count - 1
}

@Suite("The HTML report")
struct HTMLReportTests {
    @Test("CI's test lane has the browser, so the rendering tests below run there")
    func browserPresentWhereRequired() {
        guard ProcessInfo.processInfo.environment["VFIOTRACE_REQUIRE_BROWSER"] == "1" else { return }
        #expect(Browser.path != nil, "VFIOTRACE_REQUIRE_BROWSER=1 but no chromium-headless-shell")
    }

    @Test("bisect's page renders in a real browser: no console error, its script ran, the change points drawn",
          .enabled(if: Browser.path != nil, Comment(rawValue: Browser.missing)))
    func bisectPageRenders() throws {
        let dir = CLI.tempDir()
        let page = dir + "/bisect.html"
        let r = try CLI.run(["bisect", CLI.packageRoot + "/corpora/pinned-scope.vfs", "--html", page])
        #expect(r.code == 1, "\(r.err)")
        let view = try Browser.render(page, in: dir)
        #expect(view.console.isEmpty, "\(view.console)")
        // Two change points (v16 -> 5.8, 5.8 -> 5.10), each card one picture
        // (192 pages fit one level).
        #expect(view.dom.contains("data-ready=\"2\""))
        #expect(occurrences("<svg class=\"bitmap\"", in: view.dom) == 2)
        #expect(view.dom.contains("FIRST CHANGE"))
        // v16 -> 5.8: 5.8 reports page 2 dirty where v16 failed the query.
        let first = try #require(section("d1", of: view.dom))
        #expect(first.contains("class=\"bin extra l4\" data-row=\"extra\" data-pages=\"2-3\""))
        #expect(first.contains("class=\"bin clean\" data-row=\"expected\" data-pages=\"0-192\""))
        // The three mappings, holes between them hatched.
        #expect(occurrences("class=\"bin hole\"", in: first) == 2)
        #expect(first.contains("3 mappings under this bitmap: 0x0..0x3ffff, 0x40000..0x4ffff, 0x80000..0x81fff"))
        // The screenshot is not blank and shows the drawn cells' colours.
        let (ink, counts) = try Browser.colours(view.screenshot)
        #expect(ink > 5)
        #expect(counts["c56400", default: 0] > 100, "the extra pages' colour")
        #expect(counts["3f78bd", default: 0] > 1000, "the mappings' colour")
    }

    @Test("a planted script error is seen: the console check can fail",
          .enabled(if: Browser.path != nil, Comment(rawValue: Browser.missing)))
    func plantedErrorIsSeen() throws {
        let dir = CLI.tempDir()
        let page = dir + "/broken.html"
        try "<!DOCTYPE html><p>x</p><script>throw new Error('planted');</script>".write(toFile: page, atomically: true, encoding: .utf8)
        let view = try Browser.render(page, in: dir, height: 200)
        #expect(view.console.contains { $0.contains("planted") })
        let (ink, _) = try Browser.colours(view.screenshot)
        #expect(ink < 1, "a page with one letter is nearly blank")
    }

    @Test("a 256 GiB bitmap (2^26 pages) draws as a zoom from the whole range down to single pages",
          .enabled(if: Browser.path != nil, Comment(rawValue: Browser.missing)))
    func largeBitmapZooms() throws {
        let dir = CLI.tempDir()
        let scenario = dir + "/wide.vfs"
        // 256 GiB queried (2^26 pages), two mappings, the answer stated wrong
        // over the whole first mapping.
        try """
        !mode scenario
        open /dev/vfio/vfio -> 3
        open /dev/vfio/12 -> 4
        group_set_container kind=iommu -> ok
        set_iommu TYPE1v2 -> ok
        map_dma iova=0x1000000000 size=64G -> ok
        map_dma iova=0x3200000000 size=56G -> ok
        dirty start -> ok
        dirty get iova=0x0 size=256G -> ok dirty=[16777216..33554431]

        """.write(toFile: scenario, atomically: true, encoding: .utf8)
        let page = dir + "/wide.html"
        let r = try CLI.run(["replay", scenario, "--html", page])
        #expect(r.code == 1, "\(r.out)\(r.err)")
        let html = try String(contentsOfFile: page, encoding: .utf8)
        #expect(html.utf8.count < 400_000, "runs, not pages: \(html.utf8.count) bytes")
        let view = try Browser.render(page, in: dir, height: 2400)
        #expect(view.console.isEmpty, "\(view.console)")
        let card = try #require(section("d1", of: view.dom))
        let levels = occurrences("<svg class=\"bitmap\"", in: card)
        #expect(levels >= 4 && levels <= 7)
        #expect(card.contains("data-level=\"\(levels - 1)\""))
        #expect(card.contains("the whole bitmap: pages 0..67108863"))
        #expect(card.contains("one page a cell"))
        // The second mapping's pages are dirty but stated clean: extra.
        #expect(card.contains("class=\"bin extra l4\""))
        #expect(occurrences("class=\"zoom\"", in: card) == levels - 1)
    }

    @Test("conform's page: the verdict matrix links each FAIL to a card that draws its first divergence",
          .enabled(if: Browser.path != nil, Comment(rawValue: Browser.missing)))
    func conformMatrix() throws {
        let dir = CLI.tempDir()
        let rules = dir + "/rules"
        try FileManager.default.copyItem(atPath: CLI.packageRoot + "/corpora/rules", toPath: rules)
        // One rule made wrong: bitmap.layout's third page moved by one.
        let layout = rules + "/bitmap.layout.vfs"
        let text = try String(contentsOfFile: layout, encoding: .utf8)
        try text.replacingOccurrences(of: "dirty=[0,64,128]", with: "dirty=[0,64,129]")
            .write(toFile: layout, atomically: true, encoding: .utf8)
        let page = dir + "/conform.html"
        let r = try CLI.run(["conform", "--corpus", rules, "--profile", "all", "--html", page, "-q"])
        #expect(r.code == 1, "\(r.err)")
        let view = try Browser.render(page, in: dir, height: 3000)
        #expect(view.console.isEmpty, "\(view.console)")
        // bitmap.layout applies from 5.10: six profiles fail it.
        let links = view.dom.components(separatedBy: "<td class=\"v-fail\"><a href=\"#").dropFirst()
        #expect(links.count == 6)
        for l in links {
            let anchor = String(l.prefix { $0 != "\"" })
            let card = try #require(section(anchor, of: view.dom), "card \(anchor)")
            #expect(card.contains("FAIL bitmap.layout"))
            #expect(card.contains("data-row=\"extra\" data-pages=\"128-129\""))
            #expect(card.contains("data-row=\"outside\" data-pages=\"129-130\""))
        }
        #expect(occurrences("<td class=\"v-pass\">", in: view.dom) > 400)
        let (_, counts) = try Browser.colours(view.screenshot)
        #expect(counts["f7c9c9", default: 0] > 1000, "FAIL cells' colour")
    }

    @Test("what a trace holds is escaped: a device name with markup stays text")
    func hostileTextIsEscaped() throws {
        let dir = CLI.tempDir()
        func scenario(_ n: Int) throws -> String {
            let path = dir + "/s\(n).vfs"
            try """
            !mode scenario
            open /dev/vfio/vfio -> 3
            open /dev/vfio/20 -> 4
            group_set_container kind=emulated -> ok
            set_iommu TYPE1v2 -> ok
            group_get_device_fd name="</code><script>alert(\(n))</script><img src=x>" -> 5

            """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let page = dir + "/d.html"
        let r = try CLI.run(["diff", try scenario(1), try scenario(2), "--html", page])
        #expect(r.code == 1)
        let html = try String(contentsOfFile: page, encoding: .utf8)
        #expect(occurrences("<script>", in: html) == 1, "only the page's own")
        #expect(!html.contains("<img"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        // Self-contained: nothing is fetched.
        #expect(!html.contains(" src=\"") && !html.contains("href=\"http") && !html.contains("<link"))
    }

    @Test("--html never replaces an input, and `-` is standard output with the text report on standard error")
    func outputRules() throws {
        let dir = CLI.tempDir()
        let input = CLI.packageRoot + "/corpora/pinned-scope.vfs"
        let copy = dir + "/t.vfs"
        try FileManager.default.copyItem(atPath: input, toPath: copy)
        let before = try Data(contentsOf: URL(fileURLWithPath: copy))
        let r = try CLI.run(["replay", copy, "--html", copy])
        #expect(r.code == 2)
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == before)
        let s = try CLI.run(["bisect", input, "--html", "-"])
        #expect(s.code == 1)
        #expect(s.out.hasPrefix("<!DOCTYPE html>"))
        #expect(s.err.contains("FIRST CHANGE"))
        let both = try CLI.run(["replay", input, "-o", "-", "--html", "-"])
        #expect(both.code == 2 && both.err.contains("cannot both have standard output"))
        let conform = try CLI.run(["conform", "--html", "-"])
        #expect(conform.code == 2 && conform.err.contains("give the text report a file with -o"), "\(conform.err)")
    }
}
