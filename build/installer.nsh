; Windows installer additions (electron-builder NSIS). DeskGrid's node listens for the other
; nodes of its cluster (TCP 7717) and for mDNS: allow the app through Windows Firewall on private
; and domain networks, never public ones. The rule names the program by path; the installer is
; per machine with a fixed folder (Program Files\DeskGrid), so the rule still matches after every
; update and is removed with the app.

!macro customInstall
  nsExec::Exec 'netsh advfirewall firewall delete rule name="DeskGrid"'
  nsExec::Exec 'netsh advfirewall firewall add rule name="DeskGrid" dir=in action=allow program="$INSTDIR\${APP_EXECUTABLE_FILENAME}" enable=yes profile=private,domain'
!macroend

!macro customUnInstall
  nsExec::Exec 'netsh advfirewall firewall delete rule name="DeskGrid"'
!macroend
