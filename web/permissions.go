package web

import (
	"slices"

	"github.com/seedbank/seedbank/model"
)

// Right is something a role may do on the site.
type Right string

// The rights. Every check goes through Can.
const (
	RightInvite        Right = "invite"         // create and revoke own invites
	RightManageUsers   Right = "manage_users"   // list, search, enable and disable members
	RightChangeRoles   Right = "change_roles"   // make someone member, moderator or admin
	RightEditWhitelist Right = "edit_whitelist" // edit the client whitelist
	RightEditSettings  Right = "edit_settings"  // registration mode, ratio rules
	RightViewAudit     Right = "view_audit"     // read the audit log
	RightUpload        Right = "upload"         // publish datasets
	RightEditAny       Right = "edit_any"       // edit any dataset's metadata (uploaders edit their own)
	RightModerate      Right = "moderate"       // delete datasets and comments
)

// permissions is the one table of who may do what.
var permissions = map[Right][]model.Role{
	RightInvite:        {model.RoleModerator, model.RoleAdmin},
	RightManageUsers:   {model.RoleModerator, model.RoleAdmin},
	RightChangeRoles:   {model.RoleAdmin},
	RightEditWhitelist: {model.RoleModerator, model.RoleAdmin},
	RightEditSettings:  {model.RoleAdmin},
	RightViewAudit:     {model.RoleAdmin},
	RightUpload:        {model.RoleMember, model.RoleModerator, model.RoleAdmin},
	RightEditAny:       {model.RoleModerator, model.RoleAdmin},
	RightModerate:      {model.RoleModerator, model.RoleAdmin},
}

// Can reports whether role has right.
func Can(role model.Role, right Right) bool {
	return slices.Contains(permissions[right], role)
}

// roleRank orders roles, so a moderator cannot act on an admin.
func roleRank(r model.Role) int {
	switch r {
	case model.RoleAdmin:
		return 3
	case model.RoleModerator:
		return 2
	case model.RoleMember:
		return 1
	}
	return 0
}
