import Testing
import TestSupport
@testable import Replay
import Trace

@Suite("Inputs fuzzing found: replay")
struct ReplayFuzzInputTests {
    @Test("every kept input replays on the engine without a trap")
    func keptInputs() {
        let inputs = FuzzInputs.inputs("replay")
        #expect(!inputs.isEmpty)
        for (_, bytes) in inputs { ReplayFuzzing.replay(bytes) }
    }

    @Test("an engine is freed after a replay that attached groups (the group/container cycle the fuzzer's leak check found)")
    func engineFreed() {
        weak var engineLeft: BitmapEngine?
        weak var groupLeft: GroupState?
        weak var containerLeft: ContainerState?
        do {
            let engine = BitmapEngine()
            engineLeft = engine
            var replayer = Replayer(backend: engine)
            let (_, events) = try! TextParser.parse("""
                open /dev/vfio/vfio -> 3
                open /dev/vfio/12 -> 4
                group_set_container kind=iommu -> ok
                set_iommu TYPE1v2 -> ok
                map_dma iova=0x100000 size=1M -> ok

                """)
            for e in events { _ = replayer.step(e) }
            groupLeft = engine.groups[12]
            containerLeft = engine.groups[12]?.container
            #expect(containerLeft != nil && containerLeft?.iommu != nil, "the replay did not attach the group")
        }
        #expect(engineLeft == nil && groupLeft == nil && containerLeft == nil,
                "outlived the replay: engine \(engineLeft != nil), group \(groupLeft != nil), container \(containerLeft != nil)")
    }
}
