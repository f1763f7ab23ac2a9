; Inno Setup 6 script for the Windows installer (written, not yet built or tested).
; Build the bundle on Windows first (see packaging/README.md), then:
;   iscc /DAppVersion=0.1.0 packaging\windows\shopmatch.iss
; Output: packaging\dist\ShopMatch-<version>-setup.exe
; Per-user install by default (no admin rights; the shop laptop may not grant them). The app
; never writes into {app}: its library and settings live under %LOCALAPPDATA%\ShopMatch and the
; registry (QSettings), so uninstalling leaves the shop's data alone unless the user opts in.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "ShopMatch"
#define AppExe "shopmatch-desktop.exe"
#define BundleDir "..\dist\ShopMatch"

[Setup]
AppId={{6E4C3B1A-5D0E-4F57-9A1B-2C7D8E9F0A11}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=ShopMatch
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\dist
OutputBaseFilename=ShopMatch-{#AppVersion}-setup
SetupIconFile=..\icons\shopmatch.ico
UninstallDisplayIcon={app}\{#AppExe}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
; WorkingDir is the user's profile, not {app}: nothing the app does should land in its folder.
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{userdocs}"
Name: "{group}\{#AppName} demo"; Filename: "{app}\{#AppExe}"; Parameters: "--demo"; WorkingDir: "{userdocs}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{userdocs}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
