import SwiftUI

struct ContentView: View {
    @EnvironmentObject private var model: SampleModel

    var body: some View {
        NavigationView {
            Form {
                Section("SDK (point the endpoint at the local emulator)") {
                    TextField("endpoint", text: $model.endpoint)
                        .textInputAutocapitalization(.never)
                        .autocorrectionDisabled()
                    TextField("SDK token", text: $model.token)
                        .textInputAutocapitalization(.never)
                    Button(model.started ? "Running" : "Save and start the SDK") { model.start() }
                }
                Section("Calls") {
                    TextField("your app's user ID", text: $model.userID)
                        .textInputAutocapitalization(.never)
                    Button("set(userID:)") { model.setUser() }
                    Button("Log in with LINE → linkLineID(idToken:)") { model.loginWithLINE() }
                    Button("unlinkLineID") { model.unlink() }
                    Button("Opt out") { model.optIn(false) }
                    Button("Opt in") { model.optIn(true) }
                    Button("Flush") { model.flush() }
                }
                Section("Log") {
                    ForEach(Array(model.log.enumerated()), id: \.offset) { _, line in
                        Text(line).font(.footnote.monospaced())
                    }
                }
            }
            .navigationTitle("repro-line")
        }
    }
}
