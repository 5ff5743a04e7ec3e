import Testing
@testable import Conform
@testable import Replay

/// WARN (issue 19 item 6): a rule whose outcomes all match but whose replay
/// meets a kernel hazard the engine reports. No shipped rule does, so this
/// fixture pins the verdict and its three machine renderings.
@Suite("The WARN verdict")
struct WarnVerdictTests {
    /// A mapping whose bitmap needs vmalloc, tracked and freed on 5.8: kfree
    /// of it corrupts the host before 5.17 (docs/kernel-rules.md#delta-d7).
    static let fixture = """
        # rule: fixture.kfree-hazard
        # title: freeing a vmalloc'd bitmap before 5.17 is a hazard, every outcome still matching
        # refs: docs/kernel-rules.md#delta-d7
        # profiles: 5.8
        !mode rule
        open /dev/vfio/vfio -> 3
        open /dev/vfio/20 -> 4
        group_set_container kind=emulated -> ok
        set_iommu TYPE1v2 -> ok
        group_get_device_fd name="mdev0" -> 5
        map_dma iova=0x0 size=128G -> ok
        dirty start -> ok
        dirty stop -> ok

        """

    @Test("a hazard with every outcome matched is WARN, rendered as a passing test with its reason in KTAP, JUnit and JSON")
    func warn() throws {
        let catalogue = try Catalogue(files: [("fixture.kfree-hazard.vfs", Self.fixture)])
        let rule = try #require(catalogue.rules.first)
        let result = ConformRunner.run(rule, on: .engine(.v5_8))
        #expect(result.verdict == .warn, "\(result.verdict): \(result.detail)")
        #expect(result.detail.contains("kfree"), "\(result.detail)")
        let runs = [TargetResults(target: "engine:5.8", results: [result])]
        let ktap = Reporter.render(runs, format: .ktap)
        #expect(ktap.contains("# WARN: kernel hazard: kfree") && ktap.contains("\nok 1 fixture.kfree-hazard"), "\(ktap)")
        #expect(!ktap.contains("not ok"))
        let junit = Reporter.render(runs, format: .junit)
        #expect(junit.contains("<system-out>WARN: kernel hazard: kfree") && !junit.contains("<failure"), "\(junit)")
        let json = Reporter.render(runs, format: .json)
        #expect(json.contains("\"verdict\":\"WARN\"") && json.contains("\"rule\":\"fixture.kfree-hazard\""), "\(json)")
    }
}
