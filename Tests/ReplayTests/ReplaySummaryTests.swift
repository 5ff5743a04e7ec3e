import Testing
import Trace
@testable import Replay

@Suite("Profile choice, replay summary and the real backend's set-up")
struct ReplaySummaryTests {
    @Test("auto picks the newest released preset not newer than the kernel, by name; v16 never",
          arguments: [
              ("6.1.0-56-amd64", "6.0"), ("6.12.117+deb12-amd64", "6.6"), ("5.10.0-32-amd64", "5.10"),
              ("5.11.4", "5.10"), ("5.9.2", "5.8"), ("6.16.1", "latest"), ("7.0", "latest"), ("5.17.0", "5.17"),
          ])
    func auto(release: String, preset: String) {
        var h = TraceHeader(captureMode: "test")
        h.kernelRelease = release
        let (p, why) = ProfileChoice.auto.resolve(for: h)
        #expect(p.name == preset, "\(release): \(p.name)")
        #expect(why == "auto: kernel \(release)")
        #expect(KernelProfile.preset(named: p.name) == p, "\(p.name) must be a preset --profile can name")
    }

    @Test("auto without a usable release falls back to latest and says why; a preset is itself")
    func autoFallback() {
        var h = TraceHeader(captureMode: "test")
        #expect(ProfileChoice.auto.resolve(for: h).profile == .latest)
        #expect(ProfileChoice.auto.resolve(for: h).reason.contains("no kernel release"))
        h.kernelRelease = "4.19.0-20-amd64"
        #expect(ProfileChoice.auto.resolve(for: h).profile == .latest)
        #expect(ProfileChoice.auto.resolve(for: h).reason.contains("not recognised"))
        #expect(ProfileChoice(name: "5.8")?.resolve(for: h).profile == .v5_8)
        #expect(ProfileChoice(name: "4.19") == nil)
        #expect(ProfileChoice(name: "all")?.profiles == KernelProfile.presets)
        #expect(ProfileChoice.names == KernelProfile.presets.map(\.name) + ["auto", "all"])
    }

    @Test("presets are ordered by the kernel they stand for, oldest first")
    func presetOrder() {
        let kernels = KernelProfile.presets.map(\.kernel)
        #expect(kernels == kernels.sorted() && Set(kernels).count == kernels.count)
        #expect(KernelProfile.presets.filter { !$0.released }.map(\.name) == ["v16"])
    }

    @Test("the summary counts compared, divergent, outside-only, not replayed and not modelled steps")
    func tally() throws {
        let text = Scenario.iommu + """
        map_dma iova=0x100000 size=64K -> ok
        dirty start -> ok
        dirty get iova=0x100000 size=64K -> ok dirty=[0..15]
        dirty get iova=0x100000 size=64K -> EINVAL
        ioctl fd=3 kind=container req=0x3b99 -> ok

        """
        var summary = ReplaySummary()
        var kinds: [ReplaySummary.Kind] = []
        for step in try Scenario.replay(text) { kinds.append(summary.add(step)) }
        #expect(summary.events == 9)
        #expect(summary.divergent == 1, "\(kinds)")
        #expect(kinds[7] == .divergent)
        #expect(summary.firstDivergence == "#7 dirty get fd=3 iova=0x100000 size=64K: result: expected EINVAL, got ok", "\(summary.firstDivergence ?? "none")")
        #expect(summary.notModelled == 1 && summary.notReplayed == 0 && kinds[8] == .skipped, "\(kinds)")
        #expect(summary.statedOutcomes == 9)
        #expect(summary.compared == 8)
        #expect(summary.line().hasPrefix("9 events, 8 compared, 1 divergent, 1 not modelled"), "\(summary.line())")
        #expect(summary.line(extra: "x", shown: 0).hasSuffix("; x (first 0 shown; --max-divergences for more)"))
    }

    @Test("the real backend's set-up names a node it cannot open and a device that has no group, before anything runs")
    func realSetup() {
        #expect(throws: BackendSetupError.self) { _ = try RealVFIOBackend.open(groups: ["/dev/vfio/4242"], devices: [], traceKinds: [:]) }
        do {
            _ = try RealVFIOBackend.open(groups: [], devices: ["0000:99:99.9"], traceKinds: [:])
            Issue.record("a missing PCI device was accepted")
        } catch {
            #expect(error.description.hasPrefix("--device 0000:99:99.9: no such PCI device"), "\(error)")
        }
        // An empty --group (an unset shell variable) names nothing.
        #expect((try? RealVFIOBackend.open(groups: [""], devices: [], traceKinds: [:]))?.groups == [])
    }
}
