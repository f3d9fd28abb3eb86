import LineSDK
import SwiftUI

@main
struct ReproLineSampleApp: App {
    @StateObject private var model = SampleModel()

    init() {
        LoginManager.shared.setup(channelID: SampleModel.lineLoginChannelID, universalLinkURL: nil)
    }

    var body: some Scene {
        WindowGroup {
            ContentView()
                .environmentObject(model)
                // LINE Login comes back through the line3rdp.<bundle id> URL scheme.
                .onOpenURL { url in
                    _ = LoginManager.shared.application(UIApplication.shared, open: url)
                }
        }
    }
}
