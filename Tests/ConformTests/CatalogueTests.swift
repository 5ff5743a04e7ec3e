import Foundation
import Testing
import Trace
@testable import Conform
@testable import Replay

/// The shipped rule catalogue (corpora/rules), loaded as the CLI loads it.
enum Shipped {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let catalogue: Catalogue = {
        let dir = root + "/corpora/rules"
        let names = try! FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".vfs") }.sorted()
        return try! Catalogue(files: names.map { (dir + "/" + $0, try! String(contentsOfFile: dir + "/" + $0, encoding: .utf8)) })
    }()

    /// A rule's scenario text with the header lines re-printed from events.
    static func text(_ events: [Event]) -> String {
        var p = TextPrinter()
        return events.map { p.line(for: $0) }.joined(separator: "\n") + "\n"
    }
}

@Suite("The rule catalogue")
struct CatalogueTests {
    @Test("at least 50 rules with unique IDs, titles, references and valid profile selectors; the mission's three families first in depth")
    func shape() {
        let rules = Shipped.catalogue.rules
        #expect(rules.count >= 50, "\(rules.count) rules")
        #expect(Set(rules.map(\.id)).count == rules.count)
        for r in rules {
            #expect(!r.title.isEmpty && !r.refs.isEmpty, "\(r.id)")
            let valid = r.scenarios.allSatisfy { $0.profiles.isValid }
            #expect(valid, "\(r.id)")
        }
        #expect(rules.filter { $0.id.hasPrefix("size.") }.count >= 8)
        #expect(rules.filter { $0.id.hasPrefix("pgsize.") }.count >= 5)
        #expect(rules.filter { $0.id.hasPrefix("repop.") }.count >= 8)
    }

    @Test("every profile gets at most one variant of each rule, and latest gets one of every rule")
    func variantsDoNotOverlap() {
        for r in Shipped.catalogue.rules {
            #expect(r.scenario(for: .latest) != nil, "\(r.id) has nothing for latest")
            for p in KernelProfile.presets {
                #expect(r.scenarios.filter { $0.profiles.matches(p) }.count <= 1, "\(r.id) has two variants for \(p.name)")
            }
        }
    }

    @Test("every rule PASSes on the engine under every profile it applies to, and is CONF elsewhere", arguments: KernelProfile.presets)
    func passesOnEngine(profile: KernelProfile) {
        for r in Shipped.catalogue.rules {
            let result = ConformRunner.run(r, on: .engine(profile))
            if r.scenario(for: profile) == nil {
                #expect(result.verdict == .conf, "\(r.id) on \(profile.name): \(result.detail)")
            } else {
                #expect(result.verdict == .pass, "\(r.id) on \(profile.name): \(result.verdict.rawValue) \(result.detail)")
            }
        }
    }

    @Test("no rule passes vacuously: flipping its first stated result makes it FAIL")
    func flippedExpectationFails() throws {
        for r in Shipped.catalogue.rules {
            let s = try #require(r.scenario(for: .latest))
            var events = try TextParser.parse(s.text(on: HostModel())).1
            guard let i = events.firstIndex(where: { $0.result != nil && !($0.body.isOpen) }) else {
                Issue.record("\(r.id) states no result")
                continue
            }
            events[i].setResult(events[i].result!.isSuccess ? .error(ENOTBLK) : .ok(0))
            let mutated = Rule(id: r.id, title: r.title, refs: r.refs, scenarios: [
                RuleScenario(path: s.path, profiles: ProfileSelector("all"), text: Shipped.text(events), needsPinningDevice: s.needsPinningDevice)])
            let result = ConformRunner.run(mutated, on: .engine(.latest))
            #expect(result.verdict == .fail, "\(r.id): flipping event \(i) gave \(result.verdict.rawValue) \(result.detail)")
        }
    }

    @Test("a rule's variant for one kernel line FAILs on a profile whose behaviour differs (the switch flipped)")
    func variantsDistinguishProfiles() throws {
        var checked = 0
        for r in Shipped.catalogue.rules where r.scenarios.count > 1 {
            for s in r.scenarios {
                // A profile this variant is not written for, but another one is.
                guard let other = KernelProfile.presets.first(where: { !s.profiles.matches($0) && r.scenario(for: $0) != nil }) else { continue }
                let only = Rule(id: r.id, title: r.title, refs: r.refs,
                                scenarios: [RuleScenario(path: s.path, profiles: ProfileSelector("all"), text: s.text, needsPinningDevice: false)])
                let result = ConformRunner.run(only, on: .engine(other))
                #expect(result.verdict == .fail, "\(r.id) variant \(s.profiles) on \(other.name): \(result.verdict.rawValue)")
                checked += 1
            }
        }
        #expect(checked >= 10)
    }

    @Test("rules that need pinning are CONF without a pinning device, never PASS")
    func confWithoutPinning() {
        let t = ConformRunner.Target(name: "nopin", profile: .latest, hasPinningDevice: false) { _ in .success(BitmapEngine()) }
        for r in Shipped.catalogue.rules {
            let result = ConformRunner.run(r, on: t)
            if r.scenario(for: .latest)!.needsPinningDevice {
                #expect(result.verdict == .conf && result.detail.contains("pinning device"), "\(r.id)")
            }
        }
        #expect(Shipped.catalogue.rules.filter { $0.scenario(for: .latest)!.needsPinningDevice }.count >= 10)
    }

    @Test("shards are disjoint, deterministic and cover every rule", arguments: [1, 2, 3, 7])
    func shards(count: Int) {
        let all = Shipped.catalogue.rules
        let parts = (1...count).map { Catalogue.shard(all, index: $0, of: count).map(\.id) }
        #expect(parts.flatMap { $0 }.sorted() == all.map(\.id).sorted())
        #expect(Set(parts.flatMap { $0 }).count == all.count)
        #expect(parts == (1...count).map { Catalogue.shard(all, index: $0, of: count).map(\.id) })
    }

    @Test("profile selectors", arguments: [
        ("all", ["v16", "5.8", "latest"], [String]()),
        ("5.12+", ["5.12", "5.17", "6.0", "6.6", "latest"], ["v16", "5.8", "5.10"]),
        ("5.10-", ["v16", "5.8", "5.10"], ["5.12", "latest"]),
        ("5.10..6.0", ["5.10", "5.12", "5.17", "6.0"], ["5.8", "6.6", "latest"]),
        ("v16,5.8", ["v16", "5.8"], ["5.10", "latest"]),
    ])
    func selectors(text: String, yes: [String], no: [String]) {
        let s = ProfileSelector(text)
        #expect(s.isValid)
        func profile(_ n: String) -> KernelProfile { KernelProfile.preset(named: n) ?? KernelProfile.forKernelRelease("6.1.0-56-amd64")! }
        for n in yes { #expect(s.matches(profile(n)), "\(text) should match \(n)") }
        for n in no { #expect(!s.matches(profile(n)), "\(text) should not match \(n)") }
        #expect(!ProfileSelector("5.x+").isValid && !ProfileSelector("").isValid)
    }

    @Test("a catalogue file without a rule header or title is refused with its path")
    func badFiles() {
        do {
            _ = try Catalogue(files: [("x.vfs", "open /dev/vfio/vfio -> 3\n")])
            Issue.record("accepted a file without a rule header")
        } catch { #expect(error.description.contains("x.vfs")) }
        do {
            _ = try Catalogue(files: [("y.vfs", "# rule: a.b\n# profiles: 9x\nopen /dev/vfio/vfio -> 3\n")])
            Issue.record("accepted a rule without a title")
        } catch { #expect(error.description.contains("y.vfs")) }
    }
}

extension EventBody {
    var isOpen: Bool { if case .open = self { return true }; return false }
}

extension Event {
    mutating func setResult(_ r: CallResult) {
        switch body {
        case .close(var x): x.result = r; body = .close(x)
        case .getAPIVersion(var x): x.result = r; body = .getAPIVersion(x)
        case .checkExtension(var x): x.result = r; body = .checkExtension(x)
        case .setIOMMU(var x): x.result = r; body = .setIOMMU(x)
        case .getInfo(var x): x.result = r; body = .getInfo(x)
        case .mapDMA(var x): x.result = r; body = .mapDMA(x)
        case .unmapDMA(var x): x.result = r; body = .unmapDMA(x)
        case .dirtyPages(var x): x.result = r; body = .dirtyPages(x)
        case .groupGetStatus(var x): x.result = r; body = .groupGetStatus(x)
        case .groupSetContainer(var x): x.result = r; body = .groupSetContainer(x)
        case .groupUnsetContainer(var x): x.result = r; body = .groupUnsetContainer(x)
        case .groupGetDeviceFD(var x): x.result = r; body = .groupGetDeviceFD(x)
        case .pin(var x): x.result = r; body = .pin(x)
        case .unpin(var x): x.result = r; body = .unpin(x)
        case .dmaRW(var x): x.result = r; body = .dmaRW(x)
        default: break
        }
    }
}

@Suite("Rules that depend on the host take its traits")
struct RuleHostTraitTests {
    /// Debian 5.10's intel-iommu: every page size from 4K (seen in the lab).
    static var fiveTenVTd: HostModel {
        var h = HostModel()
        h.domainPgsizeBitmap = 0xffff_ffff_ffff_f000
        return h
    }

    @Test("info.migration-cap names the domain's page sizes as {host:iova_pgsizes}; each target fills in its own")
    func placeholderFilled() throws {
        let rule = try #require(Shipped.catalogue.rules.first { $0.id == "info.migration-cap" })
        for profile in [KernelProfile.v5_10, .latest] {
            let scenario = try #require(rule.scenario(for: profile))
            #expect(scenario.text.contains("{host:iova_pgsizes}"))
            #expect(scenario.text(on: HostModel()).contains("pgsizes=0x40201000"))
            #expect(scenario.text(on: Self.fiveTenVTd).contains("pgsizes=0xfffffffffffff000"))
            #expect(!scenario.text(on: Self.fiveTenVTd).contains("{host:"))
        }
    }

    @Test("on the engine with 5.10's VT-d host the rule passes, and fails when the rule takes another host's traits",
          arguments: [KernelProfile.v5_10, .latest])
    func passesOnItsHost(profile: KernelProfile) throws {
        let rule = try #require(Shipped.catalogue.rules.first { $0.id == "info.migration-cap" })
        let target = ConformRunner.Target.engine(profile, host: Self.fiveTenVTd)
        #expect(ConformRunner.run(rule, on: target).verdict == .pass)
        // The same engine, but the rule filled in with the lab's 6.x host.
        let mismatched = ConformRunner.Target(name: target.name, profile: profile, hasPinningDevice: true, engineHost: HostModel()) { _ in
            .success(BitmapEngine(profile: profile, host: Self.fiveTenVTd))
        }
        let r = ConformRunner.run(rule, on: mismatched)
        #expect(r.verdict == .fail && r.detail.contains("info.iova_pgsizes: expected 0x40201000, got 0xfffffffffffff000"), "\(r.detail)")
    }
}
