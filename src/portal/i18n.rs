//! The portal's languages: English, French and German message catalogs, the choice of one
//! from a user's stored preference or the browser's `Accept-Language`, and dates written the
//! way each language writes them.
//!
//! Owns every text the portal shows a person, refusals included (looked up by the API's stable
//! error codes). Must not know HTTP routing, sessions or the store.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::domain::Violation;

/// A language the portal speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English (the default).
    En,
    /// French.
    Fr,
    /// German.
    De,
}

impl Lang {
    /// Every language, in the order the language menu lists them.
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Fr, Lang::De];

    /// The ISO 639-1 code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
            Lang::De => "de",
        }
    }

    /// The language with this code (`fr`, `fr-CH`, `DE`), if the portal speaks it.
    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == primary)
    }

    /// The best language for an `Accept-Language` header: the spoken one with the highest
    /// quality (earliest on a tie), English when none is spoken.
    pub fn negotiate(header: Option<&str>) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in header.unwrap_or("").split(',') {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::from_code) else {
                continue;
            };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    /// This language's catalog: message key → text.
    pub fn catalog(self) -> &'static HashMap<&'static str, &'static str> {
        static CATALOGS: OnceLock<[HashMap<&'static str, &'static str>; 3]> = OnceLock::new();
        let all = CATALOGS.get_or_init(|| {
            let column = |i: usize| MESSAGES.iter().map(|m| (m.0, m.1[i])).collect();
            [column(0), column(1), column(2)]
        });
        &all[self as usize]
    }

    /// The text of `key` (the key itself if a message is missing, which a test rules out).
    pub fn t(self, key: &str) -> &'static str {
        self.catalog()
            .get(key)
            .copied()
            .unwrap_or_else(|| Lang::En.catalog().get(key).copied().unwrap_or("?"))
    }

    /// An RFC 3339 UTC time as this language writes a date and time.
    pub fn date(self, rfc3339: &str) -> String {
        // The API writes `YYYY-MM-DDTHH:MM:SS.mmmZ`; anything else is shown as it is.
        let b = rfc3339.as_bytes();
        if b.len() < 16 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
            return rfc3339.to_owned();
        }
        let (y, m, d, hm) = (
            &rfc3339[0..4],
            &rfc3339[5..7],
            &rfc3339[8..10],
            &rfc3339[11..16],
        );
        match self {
            Lang::En => format!("{y}-{m}-{d} {hm} UTC"),
            Lang::Fr => format!("{d}/{m}/{y} {hm} UTC"),
            Lang::De => format!("{d}.{m}.{y}, {hm} UTC"),
        }
    }

    /// A refused setting in this language: the setting's label and the rule it breaks, with
    /// the rule's bounds, models and character filled in (`Port SIP : doit être compris
    /// entre 1 et 65535`).
    pub fn violation(self, v: &Violation) -> String {
        let rule = self
            .t(&format!("rule_{}", v.rule.code()))
            .replace("{min}", &v.min.map_or(String::new(), |n| n.to_string()))
            .replace("{max}", &v.max.map_or(String::new(), |n| n.to_string()))
            .replace("{models}", &capitalised(v.models.unwrap_or("")))
            .replace(
                "{character}",
                &v.character
                    .map_or(String::new(), |c| format!("“{c}” (U+{:04X})", u32::from(c))),
            );
        // French sets a space before a colon.
        let colon = if self == Lang::Fr { " : " } else { ": " };
        format!("{}{colon}{rule}", self.field(&v.field))
    }

    /// A setting's label as the forms show it, from its API name (`lines[0].password` →
    /// `Line 1, Password`); an unknown name is shown as it is.
    pub fn field(self, field: &str) -> String {
        // `name[i]` and `name[i].part`: the entry's number counts from 1, as people count.
        let indexed = |name: &str| -> Option<(usize, Option<&str>)> {
            let rest = field.strip_prefix(name)?.strip_prefix('[')?;
            let (index, after) = rest.split_once(']')?;
            let part = after.strip_prefix('.');
            Some((index.parse::<usize>().ok()? + 1, part))
        };
        if let Some((n, part)) = indexed("lines") {
            let part = match part {
                Some("user") => self.t("line_user"),
                Some("auth_user") => self.t("line_auth_user"),
                Some("password") => self.t("password"),
                Some("display_name") => self.t("line_display_name"),
                _ => return format!("{} {n}", self.t("sip_line")),
            };
            return format!("{} {n}, {part}", self.t("sip_line"));
        }
        for (name, label) in [
            ("firmware", "firmware_policy"),
            ("enrolment_networks", "enrolment_networks"),
        ] {
            if let Some((n, _)) = indexed(name) {
                return format!("{}, {} {n}", self.t(label), self.t("entry"));
            }
        }
        if let Some(rest) = field.strip_prefix("vendor_keys.") {
            // `vendor_keys.<vendor>.<key>` (a key may hold `[` and `]` itself), or
            // `vendor_keys.<vendor>[i]` (a line of the form's box).
            let at = rest.find(['.', '[']).unwrap_or(rest.len());
            let (vendor, after) = rest.split_at(at);
            let which = match after.strip_prefix('.') {
                Some(key) => key.to_owned(),
                None => after
                    .strip_prefix('[')
                    .and_then(|i| i.strip_suffix(']'))
                    .and_then(|i| i.parse::<usize>().ok())
                    .map_or(String::new(), |i| format!("{} {}", self.t("entry"), i + 1)),
            };
            let label = format!("{} ({})", self.t("vendor_keys"), capitalised(vendor));
            return match which.is_empty() {
                true => label,
                false => format!("{label}, {which}"),
            };
        }
        let key = match field {
            "sip_server" | "sip_port" | "transport" | "ntp_server" | "timezone" | "phone_auth"
            | "customer" | "display_name" | "enrolment_networks" | "vendor_keys" | "lines"
            | "company" | "contact" | "address" | "phone" | "email" => field,
            "expiry_seconds" => "expiry",
            "keepalive_seconds" => "keepalive",
            "recheck_minutes" => "recheck",
            "language" => "phone_language",
            "name" => "instance_name",
            "firmware" => "firmware_policy",
            "allow_plain_http" => "plain_http",
            // An API token's: its name is told apart from an instance's by the token form.
            "token_name" => "token_name",
            "expires_at" => "expires",
            other => return other.to_owned(),
        };
        self.t(key).to_owned()
    }

    /// The message for an API error code (and, for a MAC that could not be registered, the
    /// rule's code), or `None` when the catalog has none (the API's English text is shown).
    pub fn error(self, code: &str, reason: Option<&str>) -> Option<String> {
        let key = format!("error_{code}");
        let text = self.catalog().get(key.as_str())?;
        Some(
            match reason.and_then(|r| self.catalog().get(format!("reason_{r}").as_str())) {
                Some(why) => format!("{text}: {why}"),
                None => (*text).to_owned(),
            },
        )
    }
}

/// A vendor's name as people write it (`yealink` → `Yealink`).
fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or(String::new(), |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Every message: key, then English, French, German.
const MESSAGES: &[(&str, [&str; 3])] = &[
    ("title", ["zerotouch partner portal", "Portail partenaire zerotouch", "zerotouch Partnerportal"]),
    ("skip", ["Skip to content", "Aller au contenu", "Zum Inhalt springen"]),
    ("nav_customers", ["Customers", "Clients", "Kunden"]),
    ("nav_instances", ["Instances", "Instances", "Instanzen"]),
    ("nav_devices", ["Devices", "Appareils", "Geräte"]),
    ("nav_bulk", ["Bulk add", "Ajout en masse", "Massenimport"]),
    ("nav_invite", ["Invite a colleague", "Inviter un collègue", "Kollegen einladen"]),
    ("nav_audit", ["Audit", "Journal", "Protokoll"]),
    ("audit_title", ["Audit log", "Journal d'audit", "Änderungsprotokoll"]),
    ("when", ["When", "Quand", "Wann"]),
    ("who", ["Who", "Qui", "Wer"]),
    ("action", ["Action", "Action", "Aktion"]),
    ("nav_tokens", ["API tokens", "Jetons d'API", "API-Token"]),
    ("tokens_title", ["API tokens", "Jetons d'API", "API-Token"]),
    ("token_name", ["Name", "Nom", "Name"]),
    ("read_only", ["Read only", "Lecture seule", "Nur lesen"]),
    ("expires", ["Expires", "Expire", "Läuft ab"]),
    ("scope", ["Scope", "Portée", "Umfang"]),
    ("last_used", ["Last used", "Dernière utilisation", "Zuletzt benutzt"]),
    ("revoke", ["Revoke", "Révoquer", "Widerrufen"]),
    ("revoked", ["revoked", "révoqué", "widerrufen"]),
    ("token_create", ["Issue a token", "Émettre un jeton", "Token ausstellen"]),
    ("token_once", ["Copy this token now: it is shown only once.", "Copiez ce jeton maintenant : il n'est affiché qu'une fois.", "Kopieren Sie dieses Token jetzt: es wird nur einmal angezeigt."]),
    ("select", ["Select", "Sélectionner", "Auswählen"]),
    ("selected_move", ["Move the selected phones to", "Déplacer les téléphones sélectionnés vers", "Ausgewählte Telefone verschieben nach"]),
    ("selected_release", ["Release the selected phones…", "Libérer les téléphones sélectionnés…", "Ausgewählte Telefone freigeben…"]),
    ("release_selected_confirm", ["Release these phones? They will stop receiving their configuration and can be registered by anyone.", "Libérer ces téléphones ? Ils ne recevront plus leur configuration et pourront être enregistrés par n'importe qui.", "Diese Telefone freigeben? Sie erhalten dann keine Konfiguration mehr und können von jedem registriert werden."]),
    ("state_released", ["released", "libéré", "freigegeben"]),
    ("state_moved", ["moved", "déplacé", "verschoben"]),
    ("firmware_policy", ["Firmware policy", "Politique de firmware", "Firmware-Vorgabe"]),
    ("firmware_hint", ["One per line: vendor;model;version;url (e.g. yealink;T46S;66.86.0.15;https://fw.example/T46S.rom)", "Une par ligne : fabricant;modèle;version;url (ex. yealink;T46S;66.86.0.15;https://fw.example/T46S.rom)", "Eine pro Zeile: Hersteller;Modell;Version;URL (z. B. yealink;T46S;66.86.0.15;https://fw.example/T46S.rom)"]),
    ("delete", ["Delete", "Supprimer", "Löschen"]),
    ("delete_yes", ["Yes, delete it", "Oui, la supprimer", "Ja, löschen"]),
    ("delete_instance_confirm", ["Delete this instance? Only an instance without phones can be deleted.", "Supprimer cette instance ? Seule une instance sans téléphone peut être supprimée.", "Diese Instanz löschen? Nur eine Instanz ohne Telefone kann gelöscht werden."]),
    ("logout", ["Log out", "Se déconnecter", "Abmelden"]),
    ("language", ["Language", "Langue", "Sprache"]),
    ("change", ["Change", "Changer", "Ändern"]),
    ("save", ["Save", "Enregistrer", "Speichern"]),
    ("create", ["Create", "Créer", "Anlegen"]),
    ("cancel", ["Cancel", "Annuler", "Abbrechen"]),
    ("search", ["Search", "Rechercher", "Suchen"]),
    ("next_page", ["Next page", "Page suivante", "Nächste Seite"]),
    ("none_yet", ["Nothing here yet.", "Rien pour l'instant.", "Noch nichts vorhanden."]),
    ("login_title", ["Log in", "Connexion", "Anmelden"]),
    ("email", ["E-mail", "E-mail", "E-Mail"]),
    ("password", ["Password", "Mot de passe", "Passwort"]),
    ("password_again", ["Password (again)", "Mot de passe (confirmation)", "Passwort (Wiederholung)"]),
    ("login_button", ["Log in", "Se connecter", "Anmelden"]),
    ("login_failed", ["Wrong e-mail or password.", "E-mail ou mot de passe incorrect.", "E-Mail oder Passwort falsch."]),
    ("login_throttled", ["Too many failed attempts. Try again in a few minutes.", "Trop de tentatives échouées. Réessayez dans quelques minutes.", "Zu viele Fehlversuche. Bitte in einigen Minuten erneut versuchen."]),
    ("logged_out", ["You are logged out.", "Vous êtes déconnecté.", "Sie sind abgemeldet."]),
    ("session_ended", ["Your session ended. Please log in again.", "Votre session a expiré. Veuillez vous reconnecter.", "Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an."]),
    ("set_password_title", ["Choose your password", "Choisissez votre mot de passe", "Passwort festlegen"]),
    ("set_password_hint", ["At least 12 characters.", "Au moins 12 caractères.", "Mindestens 12 Zeichen."]),
    ("set_password_button", ["Set password", "Définir le mot de passe", "Passwort festlegen"]),
    ("password_short", ["The password must have at least 12 characters.", "Le mot de passe doit comporter au moins 12 caractères.", "Das Passwort muss mindestens 12 Zeichen haben."]),
    ("password_mismatch", ["The two passwords differ.", "Les deux mots de passe diffèrent.", "Die beiden Passwörter stimmen nicht überein."]),
    ("link_invalid", ["This link is not valid any more. Ask your administrator for a new one.", "Ce lien n'est plus valable. Demandez-en un nouveau à votre administrateur.", "Dieser Link ist nicht mehr gültig. Bitten Sie Ihren Administrator um einen neuen."]),
    ("password_set", ["Your password is set. You can log in now.", "Votre mot de passe est défini. Vous pouvez vous connecter.", "Ihr Passwort ist gesetzt. Sie können sich jetzt anmelden."]),
    ("forbidden", ["This form has expired or did not come from this site. Reload the page and try again.", "Ce formulaire a expiré ou ne provient pas de ce site. Rechargez la page et réessayez.", "Dieses Formular ist abgelaufen oder stammt nicht von dieser Seite. Laden Sie die Seite neu und versuchen Sie es erneut."]),
    ("not_found", ["Not found.", "Introuvable.", "Nicht gefunden."]),
    ("unavailable", ["The service is unavailable right now. Try again shortly.", "Le service est momentanément indisponible. Réessayez dans un instant.", "Der Dienst ist gerade nicht verfügbar. Bitte gleich erneut versuchen."]),
    ("customers_title", ["Customers", "Clients", "Kunden"]),
    ("customer_new", ["+ New customer", "+ Nouveau client", "+ Neuer Kunde"]),
    ("customer_edit", ["Edit customer", "Modifier le client", "Kunde bearbeiten"]),
    ("company", ["Company", "Société", "Firma"]),
    ("contact", ["Contact", "Contact", "Ansprechpartner"]),
    ("address", ["Address", "Adresse", "Adresse"]),
    ("phone", ["Phone", "Téléphone", "Telefon"]),
    ("created", ["Created", "Créé", "Angelegt"]),
    ("saved", ["Saved.", "Enregistré.", "Gespeichert."]),
    ("instances_title", ["Instances", "Instances", "Instanzen"]),
    ("instance_new", ["+ New instance", "+ Nouvelle instance", "+ Neue Instanz"]),
    ("instance_edit", ["Instance settings", "Réglages de l'instance", "Instanz-Einstellungen"]),
    ("instance_name", ["Name (DNS label)", "Nom (label DNS)", "Name (DNS-Label)"]),
    ("customer", ["Customer", "Client", "Kunde"]),
    ("no_customer", ["(none)", "(aucun)", "(keiner)"]),
    ("sip_server", ["SIP server", "Serveur SIP", "SIP-Server"]),
    ("sip_port", ["SIP port", "Port SIP", "SIP-Port"]),
    ("transport", ["Transport", "Transport", "Transport"]),
    ("expiry", ["Registration expiry (seconds)", "Expiration de l'enregistrement (secondes)", "Registrierungsdauer (Sekunden)"]),
    ("keepalive", ["NAT keep-alive (seconds)", "Keep-alive NAT (secondes)", "NAT-Keep-alive (Sekunden)"]),
    ("ntp_server", ["NTP server", "Serveur NTP", "NTP-Server"]),
    ("recheck", ["Configuration re-check (minutes)", "Nouvelle vérification de la configuration (minutes)", "Konfiguration erneut prüfen (Minuten)"]),
    ("seen_since", ["Seen since", "Vu depuis", "Gesehen seit"]),
    ("timezone", ["Time zone", "Fuseau horaire", "Zeitzone"]),
    ("phone_language", ["Phone language", "Langue des téléphones", "Telefonsprache"]),
    ("phone_auth", ["Phone authentication", "Authentification des téléphones", "Telefon-Authentifizierung"]),
    ("phone_auth_enrolment", ["enrolment: the first fetch inside a phone's enrolment window binds it and gives it its own credentials; later fetches must authenticate. Recommended.", "enrolment : le premier téléchargement dans la fenêtre d'inscription lie le téléphone et lui donne ses propres identifiants ; les suivants doivent s'authentifier. Recommandé.", "enrolment: der erste Abruf im Registrierungsfenster bindet das Telefon und gibt ihm eigene Zugangsdaten; spätere Abrufe müssen sich authentifizieren. Empfohlen."]),
    ("phone_auth_mac", ["mac: anyone who knows a MAC address gets its configuration, SIP passwords included. For trials only.", "mac : quiconque connaît une adresse MAC obtient sa configuration, mots de passe SIP compris. Pour des essais uniquement.", "mac: wer eine MAC-Adresse kennt, erhält deren Konfiguration samt SIP-Passwörtern. Nur für Tests."]),
    ("devices_title", ["Devices", "Appareils", "Geräte"]),
    ("device_new", ["+ New phone", "+ Nouveau téléphone", "+ Neues Telefon"]),
    ("mac", ["MAC address", "Adresse MAC", "MAC-Adresse"]),
    ("mac_search", ["MAC address or its beginning, any notation", "Adresse MAC ou son début, toute notation", "MAC-Adresse oder ihr Anfang, beliebige Schreibweise"]),
    ("vendor", ["Vendor", "Fabricant", "Hersteller"]),
    ("any", ["any", "tous", "alle"]),
    ("model", ["Model", "Modèle", "Modell"]),
    ("instance", ["Instance", "Instance", "Instanz"]),
    ("last_seen", ["Last seen", "Vu pour la dernière fois", "Zuletzt gesehen"]),
    ("never", ["never", "jamais", "nie"]),
    ("never_seen_only", ["Never seen only", "Jamais vus uniquement", "Nur nie gesehene"]),
    ("firmware", ["Firmware", "Firmware", "Firmware"]),
    ("enrolment", ["Enrolment", "Inscription", "Registrierung"]),
    ("gigaset_id", ["Gigaset ID (4 characters on the label)", "ID Gigaset (4 caractères sur l'étiquette)", "Gigaset-ID (4 Zeichen auf dem Etikett)"]),
    ("display_name", ["Display name", "Nom affiché", "Anzeigename"]),
    ("register", ["Register", "Enregistrer", "Registrieren"]),
    ("device_created", ["The phone is registered.", "Le téléphone est enregistré.", "Das Telefon ist registriert."]),
    ("device_title", ["Phone", "Téléphone", "Telefon"]),
    ("status", ["Status", "État", "Status"]),
    ("source", ["From", "Depuis", "Von"]),
    ("config_preview", ["Configuration preview (passwords masked)", "Aperçu de la configuration (mots de passe masqués)", "Konfigurationsvorschau (Passwörter verborgen)"]),
    ("no_preview", ["No preview on this node.", "Pas d'aperçu sur ce nœud.", "Keine Vorschau auf diesem Knoten."]),
    ("reopen_enrolment", ["Reopen enrolment (7 days)", "Rouvrir l'inscription (7 jours)", "Registrierung wieder öffnen (7 Tage)"]),
    ("rotate", ["Rotate credentials", "Renouveler les identifiants", "Zugangsdaten erneuern"]),
    ("move_to", ["Move to instance", "Déplacer vers l'instance", "In Instanz verschieben"]),
    ("move", ["Move", "Déplacer", "Verschieben"]),
    ("release", ["Release", "Libérer", "Freigeben"]),
    ("release_confirm", ["Release this phone? It will stop receiving its configuration and can be registered by anyone.", "Libérer ce téléphone ? Il ne recevra plus sa configuration et pourra être enregistré par n'importe qui.", "Dieses Telefon freigeben? Es erhält dann keine Konfiguration mehr und kann von jedem registriert werden."]),
    ("release_yes", ["Yes, release it", "Oui, le libérer", "Ja, freigeben"]),
    ("released", ["The phone is released.", "Le téléphone est libéré.", "Das Telefon ist freigegeben."]),
    ("done", ["Done.", "Fait.", "Erledigt."]),
    ("bulk_title", ["Bulk add", "Ajout en masse", "Massenimport"]),
    ("bulk_lines", ["One phone per line: MAC[;Gigaset ID]", "Un téléphone par ligne : MAC[;ID Gigaset]", "Ein Telefon pro Zeile: MAC[;Gigaset-ID]"]),
    ("bulk_file", ["Or choose a CSV or text file (MAC, Gigaset ID); it replaces the box", "Ou choisissez un fichier CSV ou texte (MAC, ID Gigaset) ; il remplace la zone", "Oder eine CSV- oder Textdatei (MAC, Gigaset-ID) wählen; sie ersetzt das Feld"]),
    ("bulk_too_many", ["At most 10,000 lines at once: split the list", "Au plus 10 000 lignes à la fois : découpez la liste", "Höchstens 10.000 Zeilen auf einmal: teilen Sie die Liste auf"]),
    ("bulk_bad_form", ["The form could not be read. Reload the page and try again.", "Le formulaire n'a pas pu être lu. Rechargez la page et réessayez.", "Das Formular konnte nicht gelesen werden. Laden Sie die Seite neu und versuchen Sie es erneut."]),
    ("bulk_bad_file", ["The file could not be read: choose a CSV or text file in UTF-8", "Le fichier n'a pas pu être lu : choisissez un fichier CSV ou texte en UTF-8", "Die Datei konnte nicht gelesen werden: wählen Sie eine CSV- oder Textdatei in UTF-8"]),
    ("bulk_preview", ["Check", "Vérifier", "Prüfen"]),
    ("bulk_commit", ["Register the valid ones", "Enregistrer les valides", "Gültige registrieren"]),
    ("line", ["Line", "Ligne", "Zeile"]),
    ("result", ["Result", "Résultat", "Ergebnis"]),
    ("state_available", ["valid", "valide", "gültig"]),
    ("state_yours", ["already yours", "déjà à vous", "bereits Ihres"]),
    ("state_in_use", ["in use", "déjà utilisée", "bereits vergeben"]),
    ("state_invalid_mac", ["invalid", "invalide", "ungültig"]),
    ("state_unsupported_vendor", ["invalid: unsupported vendor", "invalide : fabricant non pris en charge", "ungültig: Hersteller nicht unterstützt"]),
    ("state_needs_claim_code", ["invalid: Gigaset ID missing", "invalide : ID Gigaset manquant", "ungültig: Gigaset-ID fehlt"]),
    ("state_invalid_claim_code", ["invalid: wrong Gigaset ID", "invalide : ID Gigaset erroné", "ungültig: falsche Gigaset-ID"]),
    ("state_created", ["registered", "enregistré", "registriert"]),
    ("state_unchanged", ["already yours", "déjà à vous", "bereits Ihres"]),
    ("state_updated", ["already yours (updated)", "déjà à vous (mis à jour)", "bereits Ihres (aktualisiert)"]),
    ("state_refused", ["refused", "refusé", "abgelehnt"]),
    ("invite_title", ["Invite a colleague", "Inviter un collègue", "Kollegen einladen"]),
    ("invite_button", ["Create the invitation link", "Créer le lien d'invitation", "Einladungslink erstellen"]),
    ("invite_link", ["Send this one-time link to your colleague (valid 3 days):", "Envoyez ce lien à usage unique à votre collègue (valable 3 jours) :", "Senden Sie diesen Einmal-Link an Ihren Kollegen (3 Tage gültig):"]),
    ("mac_valid", ["valid", "valide", "gültig"]),
    ("mac_invalid", ["not a valid MAC address", "adresse MAC non valide", "keine gültige MAC-Adresse"]),
    ("error_already_in_use", ["This MAC address is already in use", "Cette adresse MAC est déjà utilisée", "Diese MAC-Adresse wird bereits verwendet"]),
    ("error_could_not_be_registered", ["The MAC address could not be registered", "L'adresse MAC n'a pas pu être enregistrée", "Die MAC-Adresse konnte nicht registriert werden"]),
    ("error_registered_elsewhere", ["The MAC address could not be registered: the phone is provisioned by another provider", "L'adresse MAC n'a pas pu être enregistrée : le téléphone est provisionné par un autre fournisseur", "Die MAC-Adresse konnte nicht registriert werden: das Telefon wird von einem anderen Anbieter provisioniert"]),
    ("reason_invalid_mac", ["this is not a MAC address", "ce n'est pas une adresse MAC", "das ist keine MAC-Adresse"]),
    ("reason_unsupported_vendor", ["this vendor is not supported", "ce fabricant n'est pas pris en charge", "dieser Hersteller wird nicht unterstützt"]),
    ("reason_invalid_claim_code", ["the Gigaset ID is missing or malformed", "l'ID Gigaset est manquant ou mal formé", "die Gigaset-ID fehlt oder ist fehlerhaft"]),
    ("reason_claim_code_mismatch", ["the Gigaset ID does not match this MAC address", "l'ID Gigaset ne correspond pas à cette adresse MAC", "die Gigaset-ID passt nicht zu dieser MAC-Adresse"]),
    ("error_name_not_available", ["This instance name is not available", "Ce nom d'instance n'est pas disponible", "Dieser Instanzname ist nicht verfügbar"]),
    ("error_email_taken", ["A user with this e-mail exists already", "Un utilisateur avec cet e-mail existe déjà", "Ein Benutzer mit dieser E-Mail existiert bereits"]),
    ("error_invalid_email", ["This is not an e-mail address", "Ce n'est pas une adresse e-mail", "Das ist keine E-Mail-Adresse"]),
    ("error_not_found", ["Not found", "Introuvable", "Nicht gefunden"]),
    ("error_not_enrolled", ["This phone has not enrolled yet: there is nothing to rotate", "Ce téléphone n'est pas encore inscrit : rien à renouveler", "Dieses Telefon ist noch nicht registriert: es gibt nichts zu erneuern"]),
    ("error_unavailable", ["The database is unreachable; try again shortly", "La base de données est injoignable ; réessayez dans un instant", "Die Datenbank ist nicht erreichbar; bitte gleich erneut versuchen"]),
    ("error_invalid_field", ["A field is not valid", "Un champ n'est pas valide", "Ein Feld ist ungültig"]),
    ("error_invalid_setting", ["A setting is not valid", "Un réglage n'est pas valide", "Eine Einstellung ist ungültig"]),
    ("error_invalid_tenant_name", ["This is not a valid instance name (lower-case letters, digits and hyphens)", "Ce n'est pas un nom d'instance valide (minuscules, chiffres et tirets)", "Kein gültiger Instanzname (Kleinbuchstaben, Ziffern und Bindestriche)"]),
    ("error_unknown_customer", ["Choose one of your customers", "Choisissez l'un de vos clients", "Wählen Sie einen Ihrer Kunden"]),
    ("error_tenant_not_allowed", ["Choose one of your instances", "Choisissez l'une de vos instances", "Wählen Sie eine Ihrer Instanzen"]),
    ("error_tenant_required", ["Choose an instance", "Choisissez une instance", "Wählen Sie eine Instanz"]),
    ("error_tenant_has_devices", ["This instance still has phones: move or release them first", "Cette instance a encore des téléphones : déplacez-les ou libérez-les d'abord", "Diese Instanz hat noch Telefone: zuerst verschieben oder freigeben"]),
    ("error_bad_request", ["The request is not valid", "La requête n'est pas valide", "Die Anfrage ist ungültig"]),
    ("error_internal", ["Internal error", "Erreur interne", "Interner Fehler"]),
    // Administrator and users
    ("operator", ["Operator (administrator)", "Opérateur (administrateur)", "Betreiber (Administrator)"]),
    ("nav_users", ["Users", "Utilisateurs", "Benutzer"]),
    ("users_title", ["Users", "Utilisateurs", "Benutzer"]),
    ("user_partner", ["Partner", "Partenaire", "Partner"]),
    ("device_networks", ["Enrolment networks of this phone", "Réseaux d'inscription de ce téléphone", "Registrierungsnetze dieses Telefons"]),
    ("device_networks_hint", ["One network (CIDR) a line: where this phone may first get its own credentials. Empty: the instance's networks apply.", "Un réseau (CIDR) par ligne : d'où ce téléphone peut obtenir ses propres identifiants la première fois. Vide : les réseaux de l'instance s'appliquent.", "Ein Netz (CIDR) pro Zeile: von wo dieses Telefon zum ersten Mal eigene Zugangsdaten erhalten darf. Leer: die Netze der Instanz gelten."]),
    ("user_new", ["New user", "Nouvel utilisateur", "Neuer Benutzer"]),
    ("user_create", ["Create and make a set-password link", "Créer et générer un lien de mot de passe", "Anlegen und Passwort-Link erzeugen"]),
    ("user_reset", ["New password link", "Nouveau lien de mot de passe", "Neuer Passwort-Link"]),
    ("user_link", ["Send this one-time link (valid 3 days) to", "Envoyez ce lien à usage unique (valable 3 jours) à", "Senden Sie diesen einmaligen Link (3 Tage gültig) an"]),
    ("user_admin", ["administrator", "administrateur", "Administrator"]),
    ("user_active", ["active", "actif", "aktiv"]),
    ("user_invited", ["invited (no password yet)", "invité (pas encore de mot de passe)", "eingeladen (noch kein Passwort)"]),
    ("user_disabled", ["disabled", "désactivé", "deaktiviert"]),
    ("user_disable", ["Disable", "Désactiver", "Deaktivieren"]),
    ("user_enable", ["Enable", "Réactiver", "Aktivieren"]),
    ("user_you", ["(you)", "(vous)", "(Sie)"]),
    ("user_self", ["You cannot disable yourself.", "Vous ne pouvez pas vous désactiver vous-même.", "Sie können sich nicht selbst deaktivieren."]),
    ("users_hint", ["A disabled user cannot log in, and its sessions end at once.", "Un utilisateur désactivé ne peut plus se connecter, et ses sessions prennent fin immédiatement.", "Ein deaktivierter Benutzer kann sich nicht anmelden; seine Sitzungen enden sofort."]),
    ("audit_partner", ["Partner", "Partenaire", "Partner"]),
    ("audit_all_partners", ["all partners", "tous les partenaires", "alle Partner"]),
    ("audit_actor", ["Who (part of the name or e-mail)", "Qui (partie du nom ou de l'e-mail)", "Wer (Teil des Namens oder der E-Mail)"]),
    ("audit_action", ["Action (exact, e.g. device.claim)", "Action (exacte, p. ex. device.claim)", "Aktion (genau, z. B. device.claim)"]),
    ("audit_since", ["From (UTC day)", "Du (jour UTC)", "Von (UTC-Tag)"]),
    ("audit_until", ["To (UTC day, included)", "Au (jour UTC, inclus)", "Bis (UTC-Tag, einschließlich)"]),
    ("date_invalid", ["Not a date (YYYY-MM-DD).", "Ce n'est pas une date (AAAA-MM-JJ).", "Kein Datum (JJJJ-MM-TT)."]),
    ("error_invalid_user", ["This user cannot be created", "Cet utilisateur ne peut pas être créé", "Dieser Benutzer kann nicht angelegt werden"]),
    // Instance settings, device editing, validation
    ("vendor_keys", ["Extra vendor keys", "Clés fabricant supplémentaires", "Zusätzliche Herstellerschlüssel"]),
    ("vendor_keys_hint", ["One key=value a line, in the vendor's own key names. They are written after zerotouch's own settings and override them; nothing checks that the phone knows a key, so a wrong one can stop it from working.", "Une clé=valeur par ligne, avec les noms de clés du fabricant. Elles sont écrites après les réglages de zerotouch et les remplacent ; rien ne vérifie que le téléphone connaît la clé : une clé erronée peut l'empêcher de fonctionner.", "Ein Schlüssel=Wert pro Zeile, mit den Schlüsselnamen des Herstellers. Sie werden nach den Einstellungen von zerotouch geschrieben und überschreiben diese; niemand prüft, ob das Telefon den Schlüssel kennt: ein falscher kann es lahmlegen."]),
    ("for_example", ["e.g.", "ex.", "z. B."]),
    ("enrolment_networks", ["Enrolment networks", "Réseaux d'inscription", "Registrierungsnetze"]),
    ("enrolment_networks_hint", ["One network a line in CIDR form (e.g. 198.51.100.0/24): the customer's offices. A phone is given its own credentials only when it asks from one of them; from anywhere else it gets nothing until then. Once enrolled, it authenticates from anywhere. Empty: enrolment from anywhere. A phone's own list replaces this one.", "Un réseau par ligne en notation CIDR (ex. 198.51.100.0/24) : les bureaux du client. Un téléphone ne reçoit ses propres identifiants que s'il les demande depuis l'un d'eux ; d'ailleurs, il ne reçoit rien. Une fois inscrit, il s'authentifie depuis n'importe où. Vide : inscription depuis n'importe où. La liste propre d'un téléphone remplace celle-ci.", "Ein Netz pro Zeile in CIDR-Form (z. B. 198.51.100.0/24): die Büros des Kunden. Ein Telefon erhält seine eigenen Zugangsdaten nur, wenn es aus einem dieser Netze fragt; von anderswo erhält es nichts. Einmal registriert, authentifiziert es sich von überall. Leer: Registrierung von überall. Die eigene Liste eines Telefons ersetzt diese."]),
    ("plain_http", ["Plain HTTP", "HTTP non chiffré", "Unverschlüsseltes HTTP"]),
    ("plain_http_off", ["HTTPS only (recommended): configurations carry SIP passwords and travel encrypted.", "HTTPS uniquement (recommandé) : les configurations contiennent les mots de passe SIP et voyagent chiffrées.", "Nur HTTPS (empfohlen): Konfigurationen enthalten SIP-Passwörter und werden verschlüsselt übertragen."]),
    ("plain_http_on", ["Also over plain HTTP: configurations, SIP passwords included, travel unencrypted and anyone on the way can read them. Only for phones that cannot use HTTPS; credentials are never issued over plain HTTP.", "Aussi en HTTP non chiffré : les configurations, mots de passe SIP compris, voyagent en clair et quiconque sur le trajet peut les lire. Seulement pour des téléphones incapables d'utiliser HTTPS ; aucun identifiant n'est jamais délivré en HTTP non chiffré.", "Auch über unverschlüsseltes HTTP: Konfigurationen samt SIP-Passwörtern werden im Klartext übertragen und jeder auf dem Weg kann sie lesen. Nur für Telefone ohne HTTPS; Zugangsdaten werden nie über unverschlüsseltes HTTP ausgegeben."]),
    ("entry", ["entry", "entrée", "Eintrag"]),
    ("sip_line", ["Line", "Ligne", "Leitung"]),
    ("lines", ["Lines", "Lignes", "Leitungen"]),
    ("line_user", ["SIP user", "Utilisateur SIP", "SIP-Benutzer"]),
    ("line_auth_user", ["Authentication user", "Utilisateur d'authentification", "Authentifizierungsbenutzer"]),
    ("line_display_name", ["Caller name", "Nom de l'appelant", "Anrufername"]),
    ("device_settings", ["Lines and display name", "Lignes et nom affiché", "Leitungen und Anzeigename"]),
    ("device_settings_hint", ["Empty the SIP user of a line to remove it. Passwords are never shown: an empty password field keeps the line's current one. An empty display name removes it.", "Videz l'utilisateur SIP d'une ligne pour la supprimer. Les mots de passe ne sont jamais affichés : un champ de mot de passe vide conserve celui de la ligne. Un nom affiché vide le supprime.", "Leeren Sie den SIP-Benutzer einer Leitung, um sie zu entfernen. Passwörter werden nie angezeigt: ein leeres Passwortfeld behält das bisherige der Leitung. Ein leerer Anzeigename entfernt ihn."]),
    ("password_kept", ["unchanged", "inchangé", "unverändert"]),
    ("redirect", ["Redirect service", "Service de redirection", "Redirect-Dienst"]),
    ("redirect_not_configured", ["not used: no redirect service is configured for this vendor", "non utilisé : aucun service de redirection n'est configuré pour ce fabricant", "nicht verwendet: für diesen Hersteller ist kein Redirect-Dienst eingerichtet"]),
    ("redirect_pending", ["registration pending", "enregistrement en attente", "Registrierung ausstehend"]),
    ("redirect_registered", ["registered: the phone is sent here when it starts", "enregistré : le téléphone est envoyé ici à son démarrage", "registriert: das Telefon wird beim Start hierher geschickt"]),
    ("redirect_registered_elsewhere", ["held by another provider: the phone is sent there, not here", "détenu par un autre fournisseur : le téléphone est envoyé là-bas, pas ici", "bei einem anderen Anbieter: das Telefon wird dorthin geschickt, nicht hierher"]),
    ("redirect_failed", ["failed", "échec", "fehlgeschlagen"]),
    ("redirect_reason", ["the vendor's answer", "réponse du fabricant", "Antwort des Herstellers"]),
    ("redirect_next_try", ["next try", "prochain essai", "nächster Versuch"]),
    ("redirect_since", ["since", "depuis", "seit"]),
    ("auth_enrolled", ["enrolled: the phone authenticates with its own credentials", "inscrit : le téléphone s'authentifie avec ses propres identifiants", "registriert: das Telefon authentifiziert sich mit eigenen Zugangsdaten"]),
    ("auth_enrolment_pending", ["credentials issued, not used yet", "identifiants délivrés, pas encore utilisés", "Zugangsdaten ausgegeben, noch nicht benutzt"]),
    ("auth_compromised", ["retired credentials were presented: nothing is served until enrolment is reopened", "des identifiants retirés ont été présentés : rien n'est servi avant la réouverture de l'inscription", "ausgemusterte Zugangsdaten wurden vorgelegt: nichts wird ausgeliefert, bis die Registrierung wieder geöffnet ist"]),
    ("auth_enrolment_open", ["enrolment open: the next fetch binds the phone", "inscription ouverte : le prochain téléchargement lie le téléphone", "Registrierung offen: der nächste Abruf bindet das Telefon"]),
    ("auth_not_enrolled", ["not enrolled and no window open: reopen enrolment", "non inscrit et aucune fenêtre ouverte : rouvrez l'inscription", "nicht registriert und kein Fenster offen: Registrierung wieder öffnen"]),
    ("auth_label_code", ["Gigaset: authenticates with its MAC-ID", "Gigaset : s'authentifie avec son MAC-ID", "Gigaset: authentifiziert sich mit seiner MAC-ID"]),
    ("rule_required", ["is required", "est obligatoire", "ist erforderlich"]),
    ("rule_range", ["must be between {min} and {max}", "doit être compris entre {min} et {max}", "muss zwischen {min} und {max} liegen"]),
    ("rule_at_least", ["{models} phones need at least {min}", "les téléphones {models} exigent au moins {min}", "{models}-Telefone verlangen mindestens {min}"]),
    ("rule_at_most", ["at most {max}", "au plus {max}", "höchstens {max}"]),
    ("rule_number", ["must be a whole number", "doit être un nombre entier", "muss eine ganze Zahl sein"]),
    ("rule_host", ["is not a host name or IP address", "n'est ni un nom d'hôte ni une adresse IP", "ist weder Hostname noch IP-Adresse"]),
    ("rule_choice", ["choose one of the values offered", "choisissez l'une des valeurs proposées", "wählen Sie einen der angebotenen Werte"]),
    ("rule_mtls_not_offered", ["client certificates are not offered (no vendor documents how its certificate names the MAC address); use enrolment with enrolment networks", "les certificats client ne sont pas proposés (aucun fabricant ne documente comment son certificat nomme l'adresse MAC) ; utilisez enrolment avec des réseaux d'inscription", "Client-Zertifikate werden nicht angeboten (kein Hersteller dokumentiert, wie sein Zertifikat die MAC-Adresse nennt); verwenden Sie enrolment mit Registrierungsnetzen"]),
    ("rule_time_zone", ["is not a time zone zerotouch knows", "n'est pas un fuseau horaire connu de zerotouch", "ist keine Zeitzone, die zerotouch kennt"]),
    ("rule_language", ["is not a language zerotouch supports", "n'est pas une langue prise en charge par zerotouch", "ist keine von zerotouch unterstützte Sprache"]),
    ("rule_vendor", ["is not a supported vendor (Yealink, Snom, Gigaset)", "n'est pas un fabricant pris en charge (Yealink, Snom, Gigaset)", "ist kein unterstützter Hersteller (Yealink, Snom, Gigaset)"]),
    ("rule_firmware_line", ["write vendor;model;version;url", "écrivez fabricant;modèle;version;url", "schreiben Sie Hersteller;Modell;Version;URL"]),
    ("rule_firmware_model", ["the model must be 1 to 32 letters, digits, spaces, '_' or '-'", "le modèle doit compter 1 à 32 lettres, chiffres, espaces, « _ » ou « - »", "das Modell muss aus 1 bis 32 Buchstaben, Ziffern, Leerzeichen, „_“ oder „-“ bestehen"]),
    ("rule_firmware_version", ["the version must be 1 to 64 printable characters without spaces", "la version doit compter 1 à 64 caractères imprimables sans espace", "die Version muss aus 1 bis 64 druckbaren Zeichen ohne Leerzeichen bestehen"]),
    ("rule_firmware_url", ["the URL must start with http:// or https:// and hold no spaces or quotes", "l'URL doit commencer par http:// ou https:// et ne contenir ni espace ni guillemet", "die URL muss mit http:// oder https:// beginnen und darf keine Leerzeichen oder Anführungszeichen enthalten"]),
    ("rule_firmware_duplicate", ["a second rule for the same vendor and model", "une deuxième règle pour le même fabricant et modèle", "eine zweite Regel für denselben Hersteller und dasselbe Modell"]),
    ("rule_firmware_version_form", ["{models} phones compare versions written 2.x.y (or 83.V2.x.y)", "les téléphones {models} comparent des versions écrites 2.x.y (ou 83.V2.x.y)", "{models}-Telefone vergleichen Versionen in der Form 2.x.y (oder 83.V2.x.y)"]),
    ("rule_vendor_key_line", ["write key=value", "écrivez clé=valeur", "schreiben Sie Schlüssel=Wert"]),
    ("rule_key_name", ["a key is 1 to 128 letters, digits, '.', '_', '-', '[' or ']'", "une clé compte 1 à 128 lettres, chiffres, « . », « _ », « - », « [ » ou « ] »", "ein Schlüssel besteht aus 1 bis 128 Buchstaben, Ziffern, „.“, „_“, „-“, „[“ oder „]“"]),
    ("rule_yealink_key_name", ["{models} keys are 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", "les clés {models} comptent 1 à 128 lettres, chiffres, « . », « _ » ou « - » et commencent par une lettre ou un chiffre", "{models}-Schlüssel bestehen aus 1 bis 128 Buchstaben, Ziffern, „.“, „_“ oder „-“ und beginnen mit Buchstabe oder Ziffer"]),
    ("rule_snom_key_name", ["{models} setting names are 1 to 64 letters, digits or '_', not starting with a digit", "les noms de réglage {models} comptent 1 à 64 lettres, chiffres ou « _ » et ne commencent pas par un chiffre", "{models}-Einstellungsnamen bestehen aus 1 bis 64 Buchstaben, Ziffern oder „_“ und beginnen nicht mit einer Ziffer"]),
    ("rule_key_value", ["the value must be one line of at most 1024 characters", "la valeur doit tenir sur une ligne d'au plus 1024 caractères", "der Wert muss eine Zeile mit höchstens 1024 Zeichen sein"]),
    ("rule_control_character", ["the value must not hold control characters such as line breaks or tabs", "la valeur ne doit pas contenir de caractères de contrôle comme des sauts de ligne ou des tabulations", "der Wert darf keine Steuerzeichen wie Zeilenumbrüche oder Tabulatoren enthalten"]),
    ("rule_charset", ["{models} phones cannot carry the character {character}", "les téléphones {models} ne peuvent pas recevoir le caractère {character}", "{models}-Telefone können das Zeichen {character} nicht aufnehmen"]),
    ("rule_null_value", ["{models} phones read %NULL% as an empty value", "les téléphones {models} lisent %NULL% comme une valeur vide", "{models}-Telefone lesen %NULL% als leeren Wert"]),
    ("rule_text", ["must be 1 to 128 printable characters", "doit compter 1 à 128 caractères imprimables", "muss aus 1 bis 128 druckbaren Zeichen bestehen"]),
    ("rule_cidr", ["is not a network like 198.51.100.0/24 or a single address", "n'est pas un réseau comme 198.51.100.0/24 ni une adresse seule", "ist weder ein Netz wie 198.51.100.0/24 noch eine einzelne Adresse"]),
    ("rule_future", ["must be in the future", "doit être dans le futur", "muss in der Zukunft liegen"]),
    ("rule_empty", ["must not be empty", "ne doit pas être vide", "darf nicht leer sein"]),
    ("rule_too_long", ["at most {max} characters", "au plus {max} caractères", "höchstens {max} Zeichen"]),
    ("rule_email", ["is not an e-mail address", "n'est pas une adresse e-mail", "ist keine E-Mail-Adresse"]),
    ("rule_phone_number", ["digits, spaces and + - ( ) . / only", "uniquement des chiffres, des espaces et + - ( ) . /", "nur Ziffern, Leerzeichen und + - ( ) . /"]),
    ("rule_rename", ["an instance cannot be renamed", "une instance ne peut pas être renommée", "eine Instanz kann nicht umbenannt werden"]),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SettingRule;

    #[test]
    fn accept_language_picks_the_best_spoken_language() {
        assert_eq!(Lang::negotiate(None), Lang::En);
        assert_eq!(Lang::negotiate(Some("fr-CH, fr;q=0.9, en;q=0.8")), Lang::Fr);
        assert_eq!(Lang::negotiate(Some("es, de;q=0.5, en;q=0.4")), Lang::De);
        assert_eq!(Lang::negotiate(Some("es, it")), Lang::En);
        assert_eq!(Lang::negotiate(Some("de;q=0, fr;q=0.1")), Lang::Fr);
    }

    #[test]
    fn every_message_has_three_distinct_keys_and_no_empty_text() {
        let mut keys = std::collections::HashSet::new();
        for (key, texts) in MESSAGES {
            assert!(keys.insert(key), "duplicate {key}");
            assert!(texts.iter().all(|t| !t.is_empty()), "{key}");
        }
        for lang in Lang::ALL {
            assert_eq!(lang.catalog().len(), MESSAGES.len());
        }
    }

    #[test]
    fn dates_follow_the_language() {
        let at = "2026-11-29T09:40:12.345Z";
        assert_eq!(Lang::En.date(at), "2026-11-29 09:40 UTC");
        assert_eq!(Lang::Fr.date(at), "29/11/2026 09:40 UTC");
        assert_eq!(Lang::De.date(at), "29.11.2026, 09:40 UTC");
        assert_eq!(Lang::De.date("soon"), "soon");
    }

    #[test]
    fn refusals_are_translated_with_their_reason() {
        assert_eq!(
            Lang::Fr
                .error("could_not_be_registered", Some("invalid_mac"))
                .as_deref(),
            Some("L'adresse MAC n'a pas pu être enregistrée: ce n'est pas une adresse MAC")
        );
        assert_eq!(Lang::De.error("no_such_code", None), None);
    }

    #[test]
    fn every_setting_rule_reads_in_every_language_with_its_bounds_filled_in() {
        for rule in SettingRule::ALL {
            let key = format!("rule_{}", rule.code());
            let v = Violation::new("sip_port", rule)
                .min(5)
                .max(10)
                .models("gigaset N510/N720")
                .character('€');
            for lang in Lang::ALL {
                assert!(
                    lang.catalog().contains_key(key.as_str()),
                    "{key} in {lang:?}"
                );
                let text = lang.violation(&v);
                assert!(!text.contains('{') && !text.contains('}'), "{text}");
            }
        }
        let v = Violation::new("sip_port", SettingRule::Range)
            .min(1)
            .max(65535);
        assert_eq!(
            Lang::Fr.violation(&v),
            "Port SIP : doit être compris entre 1 et 65535"
        );
        assert_eq!(
            Lang::De.violation(&v),
            "SIP-Port: muss zwischen 1 und 65535 liegen"
        );
    }

    #[test]
    fn every_state_a_phone_page_shows_has_a_text() {
        // The API's closed sets: `PhoneAuthOut::state` and `RedirectOut::state`.
        let auth = [
            "enrolled",
            "enrolment_pending",
            "compromised",
            "enrolment_open",
            "not_enrolled",
            "label_code",
        ];
        let redirect = [
            "not_configured",
            "pending",
            "registered",
            "registered_elsewhere",
            "failed",
        ];
        let keys = auth
            .iter()
            .map(|s| format!("auth_{s}"))
            .chain(redirect.iter().map(|s| format!("redirect_{s}")));
        for key in keys {
            for lang in Lang::ALL {
                assert!(
                    lang.catalog().contains_key(key.as_str()),
                    "{key} in {lang:?}"
                );
            }
        }
    }

    #[test]
    fn every_setting_a_form_can_refuse_has_a_label() {
        let fields = [
            "name",
            "customer",
            "sip_server",
            "sip_port",
            "transport",
            "expiry_seconds",
            "keepalive_seconds",
            "ntp_server",
            "timezone",
            "language",
            "recheck_minutes",
            "phone_auth",
            "allow_plain_http",
            "firmware[0]",
            "enrolment_networks[3]",
            "vendor_keys.yealink",
            "vendor_keys.snom[1]",
            "vendor_keys.gigaset.BS_IP_Data1.aucS_SIP_SERVER",
            "display_name",
            "lines",
            "lines[0].user",
            "lines[1].auth_user",
            "lines[2].password",
            "lines[3].display_name",
            "company",
            "contact",
            "address",
            "phone",
            "email",
        ];
        for lang in Lang::ALL {
            for field in fields {
                let label = lang.field(field);
                assert!(
                    !label.contains('_') || field.starts_with("vendor_keys."),
                    "{field} in {lang:?}: {label}"
                );
            }
        }
        assert_eq!(Lang::Fr.field("lines[2].password"), "Ligne 3, Mot de passe");
        assert_eq!(Lang::En.field("firmware[0]"), "Firmware policy, entry 1");
        assert_eq!(
            Lang::De.field("vendor_keys.snom[1]"),
            "Zusätzliche Herstellerschlüssel (Snom), Eintrag 2"
        );
        assert_eq!(
            Lang::En.field("vendor_keys.yealink.voice.tone.country"),
            "Extra vendor keys (Yealink), voice.tone.country"
        );
        assert_eq!(
            Lang::En.field("vendor_keys.gigaset.BS_Key[2]"),
            "Extra vendor keys (Gigaset), BS_Key[2]"
        );
    }
}
